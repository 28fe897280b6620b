"""BEATs checkpoints load weights-only; a file that needs full unpickling is refused with the fix, or opted in."""
import subprocess
import sys
import types

import pytest
import torch

from upstream_merged.mam.loading import load_attention_model
from upstream_merged.models.beats import beats_fbank, load_beats
from upstream_merged.models.beats_convert import convert_beats_checkpoint
from upstream_merged.models.checkpoint import CheckpointError, PickleRequiredError
from upstream_merged.tiny.beats import build_tiny_beats
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir


def _pickled_beats(path, seed=3):
    """An official-format .pt whose cfg is a Python object (as some re-saved checkpoints store it)."""
    model = build_tiny_beats(seed=seed)
    cfg = types.SimpleNamespace(**model.config.to_dict())  # not a weights-only global
    torch.save({"cfg": cfg, "model": model.state_dict()}, path)
    return model


def _last_state(model, seed=0):
    wav = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(beats_fbank(wav)[None]).hidden_states[-1]


def test_file_needing_full_unpickling_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "BEATs_pickled.pt"
    _pickled_beats(path)
    with pytest.raises(PickleRequiredError) as info:
        load_beats(path)
    message = str(info.value)
    assert str(path) in message and "SimpleNamespace" in message
    assert "python -m upstream_merged.models.beats_convert" in message and "allow_pickle: true" in message
    assert "torch.save({'cfg': dict(cfg), 'model': blob['model']}" in message  # the Python snippet


def test_allow_pickle_loads_the_same_model(tmp_path):
    path = tmp_path / "BEATs_pickled.pt"
    model = _pickled_beats(path)
    loaded = load_beats(path, allow_pickle=True)
    assert loaded.config == model.config
    assert torch.equal(_last_state(loaded), _last_state(model))


def test_the_snippet_in_the_message_converts_the_file(tmp_path):
    path = tmp_path / "BEATs_pickled.pt"
    model = _pickled_beats(path)
    with pytest.raises(PickleRequiredError) as info:
        load_beats(path)
    snippet = "\n".join(line.strip() for line in str(info.value).splitlines()[1:4])
    exec(snippet, {"torch": torch})  # noqa: S102 - the three lines the error tells the user to run
    converted = tmp_path / "BEATs_pickled_weights_only.pt"
    torch.load(converted, weights_only=True)
    assert torch.equal(_last_state(load_beats(converted)), _last_state(model))


def test_convert_command_writes_a_weights_only_file(tmp_path):
    path, out = tmp_path / "BEATs_pickled.pt", tmp_path / "converted.pt"
    model = _pickled_beats(path)
    result = subprocess.run([sys.executable, "-m", "upstream_merged.models.beats_convert", str(path), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    blob = torch.load(out, weights_only=True)
    assert isinstance(blob["cfg"], dict) and set(blob) == {"cfg", "model"}
    assert torch.equal(_last_state(load_beats(out)), _last_state(model))
    with pytest.raises(FileExistsError):
        convert_beats_checkpoint(path, out)  # never overwrites


def test_beats_entry_refuses_a_pickled_file(tmp_path):
    from upstream_merged.hub.beats import beats

    path = tmp_path / "BEATs_pickled.pt"
    _pickled_beats(path)
    with pytest.raises(PickleRequiredError, match="beats_convert"):
        beats(ckpt=str(path))


def test_mam_loader_needs_allow_pickle_for_such_a_target(tmp_path):
    path = tmp_path / "BEATs_pickled.pt"
    model = _pickled_beats(path)
    with pytest.raises(PickleRequiredError):
        load_attention_model(path)
    loaded = load_attention_model(path, allow_pickle=True)
    assert loaded.arch == "beats" and torch.equal(_last_state(loaded.model), _last_state(model))


def test_allow_pickle_is_refused_for_hugging_face_dirs(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=1))
    with pytest.raises(CheckpointError, match="allow_pickle applies only to BEATs"):
        load_attention_model(tmp_path, allow_pickle=True)


def test_mam_recipe_allow_pickle_builds_from_a_pickled_target(tmp_path):
    from upstream_merged.mam.build import build_merged_dir
    from upstream_merged.recipe import parse_recipe

    path = tmp_path / "BEATs_pickled.pt"
    _pickled_beats(path)
    data = {"method": "mam", "sources": {"target": str(path), "source": "tiny:bert"}, "lambda": 0.1}
    with pytest.raises(PickleRequiredError):
        build_merged_dir(parse_recipe(data), tmp_path / "refused")
    out = build_merged_dir(parse_recipe({**data, "allow_pickle": True}), tmp_path / "merged")
    torch.load(out / "model.pt", weights_only=True)  # the merged target is written weights-only
    assert load_beats(out / "model.pt").config.encoder_layers == 2
