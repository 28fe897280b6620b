"""Source resolution: local paths, offline Hugging Face ids with an actionable error, tiny models."""
import pytest

from upstream_merged.hub.baselines import DEFAULT_SOURCES, hubert_family_upstream
from upstream_merged.sources import SourceError, resolve_source
from upstream_merged.tiny import materialize_tiny, parse_tiny


def test_existing_directory_is_used_as_is(tmp_path):
    assert resolve_source(tmp_path) == tmp_path.resolve()


def test_missing_local_path_is_named(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        resolve_source(str(tmp_path / "absent"))


@pytest.mark.parametrize("entry", ["hubert_base_hf", "mert_v0_public", "mert_v1_95m"])
def test_offline_hf_id_says_how_to_use_k(entry):
    with pytest.raises(SourceError) as err:
        hubert_family_upstream(DEFAULT_SOURCES[entry], what=f"{entry} checkpoint")
    message = str(err.value)
    assert DEFAULT_SOURCES[entry] in message and "-k DIR" in message and "HF_HUB_OFFLINE" in message


def test_hub_entry_with_k_pointing_at_nothing(tmp_path):
    import s3prl.hub as hub

    with pytest.raises(SourceError, match="no such file"):
        hub.hubert_base_hf(ckpt=str(tmp_path / "missing_dir"))


def test_tiny_models_are_written_once_and_reused():
    first = materialize_tiny("tiny:hubert:3")
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert materialize_tiny("tiny:hubert:3") == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert materialize_tiny("tiny:hubert:4") != first


@pytest.mark.parametrize("bad", ["tiny:", "tiny:nosuch", "tiny:hubert:x", "tiny:hubert:1:2"])
def test_bad_tiny_sources(bad):
    with pytest.raises(ValueError, match="tiny"):
        parse_tiny(bad)


def test_unreadable_hf_cache_names_the_real_cause(tmp_path, monkeypatch):
    """A cache that exists but cannot be read is reported as such, not as 'not in the cache'."""
    from huggingface_hub import constants

    repo = tmp_path / "models--someorg--somemodel"
    (repo / "refs" / "main").mkdir(parents=True)  # refs/main must be a file: reading it fails
    (repo / "snapshots").mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError) as err:
        resolve_source("someorg/somemodel", what="test model")
    message = str(err.value)
    assert "could not be read" in message and "IsADirectoryError" in message and "-k DIR" in message
    assert isinstance(err.value.__cause__, IsADirectoryError)


def test_model_simply_absent_from_the_cache_still_says_how_to_get_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match="HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"):
        resolve_source("someorg/othermodel", what="test model")
