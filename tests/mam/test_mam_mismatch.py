"""Size mismatches between target and source are errors naming the parameter; layer maps are explicit."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from mam_helpers import loaded, mam_recipe, merge_to
from upstream_merged.mam.build import load_pair
from upstream_merged.mam.core import MAMError
from upstream_merged.mam.layouts import LAYOUTS, QKV
from upstream_merged.mam.loading import load_attention_model
from upstream_merged.mam.text_image import load_bert, load_vit
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.tiny.text_image import write_bert_dir, write_vit_dir


@pytest.mark.parametrize("target,overrides,names", [
    ("hubert", {"hidden_size": 48}, ("hidden_size=32", "hidden_size=48")),
    ("beats", {"hidden_size": 48}, ("encoder_embed_dim=32", "hidden_size=48")),
    ("hubert", {"num_attention_heads": 8}, ("num_attention_heads=4", "num_attention_heads=8")),
    ("beats", {"num_attention_heads": 8}, ("encoder_attention_heads=4", "num_attention_heads=8")),
    ("hubert", {"num_hidden_layers": 3}, ("num_hidden_layers=2", "num_hidden_layers=3", "layer_map")),
    ("beats", {"num_hidden_layers": 3}, ("encoder_layers=2", "num_hidden_layers=3", "layer_map")),
])
def test_size_mismatch_names_the_parameter(tmp_path, target, overrides, names):
    source = write_bert_dir(tmp_path / "bert", seed=1, **overrides)
    with pytest.raises(MAMError) as err:
        load_pair(mam_recipe(target, str(source), **{"lambda": 0.1}))
    for name in names:
        assert name in str(err.value)


def test_explicit_layer_map_merges_unequal_depths(tmp_path):
    deep = write_bert_dir(tmp_path / "deep_bert", seed=2, num_hidden_layers=4)
    out = merge_to(tmp_path, "hubert", str(deep), **{"lambda": 1.0, "layer_map": {0: 3, 1: 0}})
    merged = load_attention_model(out).model.state_dict()
    source = load_bert(deep).model.state_dict()
    for target_layer, source_layer in ((0, 3), (1, 0)):
        for role in QKV:
            for t_name, s_name in zip(LAYOUTS["hubert"].tensor_names(role, target_layer),
                                      LAYOUTS["bert"].tensor_names(role, source_layer)):
                assert torch.equal(merged[t_name], source[s_name])


def test_wrong_target_architecture_is_refused(tmp_path):
    with pytest.raises(ValueError, match="targets must be one of"):
        load_pair(mam_recipe("bert", "vit", **{"lambda": 0.1}))


def test_tiny_bert_loads_strictly_with_named_allowances():
    source = loaded("bert")
    assert source.arch == "bert" and (source.dims.width, source.dims.heads, source.dims.layers) == (32, 4, 2)
    notes = " | ".join(source.notes)
    assert "cls." in notes and "'bert.'" in notes and "gamma/beta" in notes


def test_unknown_or_missing_source_keys_are_named(tmp_path):
    directory = write_bert_dir(tmp_path / "bert", seed=0)
    state = load_file(str(directory / "model.safetensors"))
    state["bert.encoder.layer.0.attention.self.extra"] = torch.zeros(1)
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(CheckpointError, match="encoder.layer.0.attention.self.extra"):
        load_bert(directory)
    del state["bert.encoder.layer.0.attention.self.extra"], state["bert.encoder.layer.1.attention.self.key.bias"]
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(CheckpointError, match="encoder.layer.1.attention.self.key.bias"):
        load_bert(directory)


def test_vit_classification_checkpoint_layout_loads(tmp_path):
    directory = write_vit_dir(tmp_path / "vit", seed=0)
    state = load_file(str(directory / "model.safetensors"))
    wrapped = {f"vit.{k}": v for k, v in state.items()}
    wrapped["classifier.weight"], wrapped["classifier.bias"] = torch.zeros(5, 32), torch.zeros(5)
    save_file(wrapped, str(directory / "model.safetensors"))
    model = load_vit(directory)
    assert any("classifier." in note for note in model.notes)
    assert torch.equal(model.model.state_dict()["encoder.layer.1.attention.attention.query.weight"],
                       state["encoder.layer.1.attention.attention.query.weight"])
