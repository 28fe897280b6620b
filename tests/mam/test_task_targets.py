"""Task-fine-tuned MAM targets (HubertForCTC dir, fine-tuned BEATs) load strictly WITH their heads; MAM merges
only encoder attention projections and writes a dir the same class loads, head untouched."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from upstream_merged.mam.build import build_merged_dir, read_report
from upstream_merged.mam.loading import load_attention_model
from upstream_merged.mam.task_models import load_beats_classifier, load_hubert_ctc
from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.recipe import parse_recipe
from upstream_merged.sources import resolve_source
from upstream_merged.tiny.task_models import build_tiny_hubert_ctc, write_beats_classifier, write_hubert_ctc_dir


def _recipe(target: str, source: str, lam: float = 0.5):
    return parse_recipe({"method": "mam", "sources": {"target": target, "source": source}, "lambda": lam})


def _qkv(name: str) -> bool:
    return any(f".{p}_proj." in name for p in "qkv") and ".layers." in name


def test_ctc_dir_loads_strictly_with_head_and_processor(tmp_path):
    path = resolve_source("tiny:hubert_ctc:0")
    ctc = load_hubert_ctc(path)
    assert ctc.model.lm_head.weight.shape == (32, 32)
    assert ctc.vocabulary[:5] == ["<pad>", "<s>", "</s>", "<unk>", "|"]
    stored = load_file(str(path / "model.safetensors"))
    assert "hubert.encoder.pos_conv_embed.conv.weight_g" in stored  # published (old) weight-norm names
    assert torch.equal(ctc.model.lm_head.weight, stored["lm_head.weight"])
    target = load_attention_model(path)  # what MAM loads: the encoder, with the CTC model kept as task_model
    assert target.task_model is not None and target.model is target.task_model.hubert

    broken = tmp_path / "extra"
    shutil.copytree(path, broken)
    save_file({**stored, "lm_head.extra": torch.zeros(1)}, str(broken / "model.safetensors"))
    with pytest.raises(CheckpointError, match="keys the model does not have: lm_head.extra"):
        load_hubert_ctc(broken)
    headless = tmp_path / "headless"
    shutil.copytree(path, headless)
    save_file({k: v for k, v in stored.items() if not k.startswith("lm_head.")}, str(headless / "model.safetensors"))
    with pytest.raises(CheckpointError, match="no lm_head"):
        load_hubert_ctc(headless)
    small_vocab = tmp_path / "vocab"
    write_hubert_ctc_dir(small_vocab, build_tiny_hubert_ctc(0), vocab={"<pad>": 0, "|": 1, "A": 2})
    with pytest.raises(CheckpointError, match=r"tokenizer has \d+ tokens but config vocab_size=32"):
        load_hubert_ctc(small_vocab)
    no_vocab = tmp_path / "no_vocab"
    shutil.copytree(path, no_vocab)
    (no_vocab / "vocab.json").unlink()
    with pytest.raises(CheckpointError, match="missing .*vocab.json"):
        load_attention_model(no_vocab)


def test_beats_classifier_loads_strictly_with_predictor_and_labels(tmp_path):
    path = write_beats_classifier(tmp_path / "ft.pt", ["dog", "rain", "siren"], seed=3)
    classifier = load_beats_classifier(path)
    assert classifier.labels == ["dog", "rain", "siren"]
    blob = torch.load(path, weights_only=True)
    assert torch.equal(classifier.predictor.weight, blob["model"]["predictor.weight"])
    logits = classifier(torch.randn(2, 16000, generator=torch.Generator().manual_seed(0)) * 0.1)
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()

    blob["model"].pop("predictor.bias")
    torch.save(blob, tmp_path / "no_bias.pt")
    with pytest.raises(CheckpointError, match="does not fill: predictor.bias"):
        load_beats_classifier(tmp_path / "no_bias.pt")
    blob = torch.load(resolve_source("tiny:beats:0") / "BEATs_tiny.pt", weights_only=True)
    with pytest.raises(CheckpointError, match="finetuned_model is false"):
        torch.save(blob, tmp_path / "pre.pt")
        load_beats_classifier(tmp_path / "pre.pt")


def test_mam_into_ctc_target_writes_a_hubert_for_ctc_dir_with_the_head_untouched(tmp_path):
    from transformers import HubertForCTC

    target = resolve_source("tiny:hubert_ctc:0")
    out = build_merged_dir(_recipe("tiny:hubert_ctc:0", "tiny:bert:0"), tmp_path / "merged", progress=False)
    assert read_report(out)["target"]["head"] == "ctc"
    before = HubertForCTC.from_pretrained(str(target)).state_dict()
    after = HubertForCTC.from_pretrained(str(out)).state_dict()  # the same class loads the merged dir
    assert set(before) == set(after)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if _qkv(k)}  # q/k/v weights and biases of every layer, nothing else
    assert torch.equal(before["lm_head.weight"], after["lm_head.weight"])
    for name in ("vocab.json", "tokenizer_config.json", "preprocessor_config.json", "special_tokens_map.json"):
        assert (out / name).read_bytes() == (target / name).read_bytes()
    merged = load_hubert_ctc(out)  # and our strict loader, processor included
    assert isinstance(merged.transcribe(torch.zeros(8000)), str)


def test_mam_into_beats_classifier_keeps_predictor_and_labels(tmp_path):
    out = build_merged_dir(_recipe("tiny:beats_esc50:0", "tiny:vit:0", 0.3), tmp_path / "merged", progress=False)
    assert read_report(out)["target"]["head"] == "classifier"
    original = load_beats_classifier(resolve_source("tiny:beats_esc50:0"))
    merged = load_beats_classifier(out / "model.pt")
    assert merged.labels == original.labels
    before, after = original.state_dict(), merged.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if _qkv(k)}
    assert torch.equal(before["predictor.weight"], after["predictor.weight"])
    assert json.loads((out / "mam_report.json").read_text())["tensors_merged"] == 2 * 3 * 2
