"""Bad weights get named errors: NaN/Inf tensors at load (every loader) and truncated weight files."""
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from upstream_merged.mam.text_image import load_bert, load_vit
from upstream_merged.models.beats import load_beats
from upstream_merged.models.checkpoint import CheckpointError, NonFiniteTensorError, check_finite
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.models.wavlm import load_wavlm
from upstream_merged.models.whisper import load_whisper_encoder
from upstream_merged.tiny.beats import build_tiny_beats, write_beats_checkpoint
from upstream_merged.tiny.fusion import build_tiny_wavlm, build_tiny_whisper, write_wavlm_dir, write_whisper_dir
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir, write_mert_dir
from upstream_merged.tiny.text_image import write_bert_dir, write_vit_dir


def _poison_safetensors(directory, value):
    """Put ``value`` into one element of the first loaded 2-D tensor of model.safetensors; return its key."""
    path = directory / "model.safetensors"
    state = load_file(str(path))
    key = sorted(k for k, v in state.items() if v.dim() == 2 and "decoder." not in k)[0]  # Whisper's decoder is skipped
    state[key] = state[key].clone()
    state[key][0, 0] = value
    save_file(state, str(path))
    return key


WRITERS = {
    "hubert": (lambda d: write_hubert_dir(d, build_tiny_hubert(seed=1)), load_hubert_family),
    "wavlm": (lambda d: write_wavlm_dir(d, build_tiny_wavlm(seed=2)), load_wavlm),
    "whisper": (lambda d: write_whisper_dir(d, build_tiny_whisper(seed=3)), load_whisper_encoder),
    "bert": (lambda d: write_bert_dir(d, seed=4), load_bert),
    "vit": (lambda d: write_vit_dir(d, seed=5), load_vit),
}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("family", sorted(WRITERS))
def test_non_finite_tensor_is_refused_at_load_by_name(tmp_path, family, value):
    write, load = WRITERS[family]
    write(tmp_path)
    key = _poison_safetensors(tmp_path, value)
    with pytest.raises(NonFiniteTensorError) as info:
        load(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    # the loader may strip a wrapper prefix ("bert.", "model.encoder."): the tensor's own name is in the message
    assert key.split(".", 1)[-1].split("encoder.", 1)[-1] in message
    assert ("NaN" in message) and ("1 NaN" in message) == (value != value)


def test_non_finite_tensor_in_a_mert_bin_is_refused(tmp_path):
    write_mert_dir(tmp_path, build_tiny_hubert(seed=6), version="v1")
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["encoder.layers.1.final_layer_norm.bias"][3] = math.nan
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(NonFiniteTensorError, match=r"encoder\.layers\.1\.final_layer_norm\.bias \(1 NaN"):
        load_hubert_family(tmp_path)


def test_non_finite_tensor_in_beats_is_refused(tmp_path):
    model = build_tiny_beats(seed=7)
    path = write_beats_checkpoint(tmp_path / "b.pt", model)
    blob = torch.load(path, weights_only=True)
    blob["model"]["encoder.layers.0.fc2.weight"][1, 1] = math.inf
    torch.save(blob, path)
    with pytest.raises(NonFiniteTensorError, match=r"encoder\.layers\.0\.fc2\.weight \(0 NaN, 1 Inf"):
        load_beats(path)


def test_check_finite_names_every_bad_tensor_and_ignores_integer_ones():
    state = {"a": torch.zeros(3), "b": torch.tensor([1.0, math.nan, math.inf]), "c": torch.arange(3),
             "d": torch.tensor([-math.inf])}
    with pytest.raises(NonFiniteTensorError) as info:
        check_finite(state, "src", "merged")
    message = str(info.value)
    assert "b (1 NaN, 1 Inf of 3)" in message and "d (0 NaN, 1 Inf of 1)" in message
    assert "a (" not in message and "merged" in message and message.startswith("src:")
    check_finite({"a": torch.ones(2), "c": torch.arange(2)}, "src")  # finite: no error


@pytest.mark.parametrize("cut", [0.5, 0.01])
def test_truncated_safetensors_names_the_file(tmp_path, cut):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=8))
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * cut))])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        load_hubert_family(tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("cut", [0.5, 0.01])
def test_truncated_bin_names_the_file(tmp_path, cut):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=9), weights="bin")
    path = tmp_path / "pytorch_model.bin"
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * cut))])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        load_hubert_family(tmp_path)
    assert str(path) in str(info.value)


def test_truncated_beats_pt_names_the_file(tmp_path):
    path = write_beats_checkpoint(tmp_path / "b.pt", build_tiny_beats(seed=10))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        load_beats(path)
    assert str(path) in str(info.value)
