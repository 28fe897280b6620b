"""check-sources, offline: the hub API is replaced by a fake holding the published metadata of the packaged
recipes' models and datasets, so a bad id, config, split, column or a script-based dataset is found without
loading anything; with HF_HUB_OFFLINE (or an unreachable hub) it says so and lists what a build would fetch."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import upstream_merged
from upstream_merged import check_sources
from upstream_merged.__main__ import main
from upstream_merged.sources import source_kind

RECIPES = Path(upstream_merged.__file__).parent / "recipes"
LIBRISPEECH = "fixie-ai/librispeech_asr"
FMA = "benjamin-paine/free-music-archive-commercial-16khz-full"


def _files(*pairs):
    return [SimpleNamespace(rfilename=name, size=size) for name, size in pairs]


def _librispeech_card():
    features = [{"name": "file", "dtype": "string"}, {"name": "audio", "dtype": {"audio": {"sampling_rate": 16000}}},
                {"name": "text", "dtype": "string"}, {"name": "speaker_id", "dtype": "int64"},
                {"name": "chapter_id", "dtype": "int64"}, {"name": "id", "dtype": "string"}]
    splits = [{"name": "train.100", "num_examples": 28539}, {"name": "train.360", "num_examples": 104014},
              {"name": "validation", "num_examples": 2703}, {"name": "test", "num_examples": 2620}]
    return {"configs": [{"config_name": "clean", "data_files": [{"split": s["name"], "path": f"clean/{s['name']}-*"}
                                                                for s in splits]}],
            "dataset_info": [{"config_name": "clean", "features": features, "splits": splits}]}


def _fma_card():
    features = [{"name": "audio", "dtype": "audio"}, {"name": "title", "dtype": "string"},
                {"name": "url", "dtype": "string"}, {"name": "artist", "dtype": "string"},
                {"name": "album_title", "dtype": "string"}, {"name": "license", "dtype": {"class_label": {}}},
                {"name": "copyright", "dtype": "string"}]
    return {"configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
            "dataset_info": {"features": features, "splits": [{"name": "train", "num_examples": 8802}],
                             "download_size": 10506892695}}


class FakeHub:
    """Answers model_info / dataset_info from a dict, raising what huggingface_hub raises for a missing repo."""

    def __init__(self, error=None):
        self.error = error
        self.calls = []
        self.models = {
            "facebook/hubert-base-ls960": _files(("config.json", 1_500), ("preprocessor_config.json", 200),
                                                 ("pytorch_model.bin", 377_607_901), ("README.md", 3_000)),
            "m-a-p/MERT-v0-public": _files(("config.json", 2_000), ("preprocessor_config.json", 200),
                                           ("pytorch_model.bin", 377_000_000), ("modeling_MERT.py", 40_000)),
        }
        self.datasets = {
            LIBRISPEECH: (_files(("README.md", 9_000), *[(f"clean/train.100-{n:05d}-of-00024.parquet", 260_000_000)
                                                         for n in range(24)],
                                 ("clean/test-00000-of-00002.parquet", 170_000_000)), _librispeech_card()),
            FMA: (_files(("README.md", 5_680), *[(f"data/train-{n:05d}-of-00021.parquet", 500_000_000)
                                                 for n in range(21)]), _fma_card()),
            "openslr/librispeech_asr": (_files(("README.md", 8_000), ("librispeech_asr.py", 11_500)), {}),
        }

    def _raise(self, repo_id, table):
        from huggingface_hub.errors import RepositoryNotFoundError

        self.calls.append(repo_id)
        if self.error is not None:
            raise self.error
        if repo_id not in table:
            raise RepositoryNotFoundError(f"404 Client Error. Repository Not Found for url: .../{repo_id}")

    def model_info(self, repo_id, **kwargs):
        self._raise(repo_id, self.models)
        return SimpleNamespace(siblings=self.models[repo_id], gated=False)

    def dataset_info(self, repo_id, **kwargs):
        self._raise(repo_id, self.datasets)
        files, card = self.datasets[repo_id]
        return SimpleNamespace(siblings=files, card_data=card, gated=False)


@pytest.fixture
def online(monkeypatch):
    """The hub 'reachable' through the fake (HF_HUB_OFFLINE cleared; nothing leaves the machine)."""
    hub = FakeHub()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(check_sources, "hub_api", lambda: hub)
    monkeypatch.setattr(check_sources, "_cached_snapshot", lambda repo_id: None)
    return hub


def _recipe_copy(tmp_path, name="hubert_mert.yaml", **changes) -> Path:
    data = yaml.safe_load((RECIPES / name).read_text())
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value
    out = tmp_path / name
    out.write_text(yaml.safe_dump(data))
    return out


def test_packaged_recipe_resolves_and_reports_sizes(online, capsys):
    assert main(["check-sources", str(RECIPES / "hubert_mert.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.count("\n  ok ") == 4
    assert "hub: fetch 3 files, 377.6 MB" in out  # config.json, preprocessor_config.json, pytorch_model.bin
    assert "24 files, 6.2 GB in the split (28,539 examples), audio column 'audio' (16000 Hz)" in out
    assert "(8,802 examples), audio column 'audio' (native rate per file)" in out
    assert "every source resolves" in out and "a build would fetch about" in out


def test_a_bad_model_id_is_named_before_anything_loads(online, tmp_path, capsys):
    recipe = _recipe_copy(tmp_path, **{"sources.b": "m-a-p/MERT-v0-publik"})
    assert main(["check-sources", str(recipe)]) == 1
    out = capsys.readouterr().out
    assert "BAD         model   b       m-a-p/MERT-v0-publik" in out and "not found on the hub" in out
    assert "1 source(s) will fail: m-a-p/MERT-v0-publik" in out
    assert online.calls.count("m-a-p/MERT-v0-publik") == 1  # one metadata request, no download


@pytest.mark.parametrize("change,expected", [
    ({"calibration.datasets.0.split": "train100"}, "config 'clean' has no split 'train100'"),
    ({"calibration.datasets.0.config": "cleaned"}, "no config 'cleaned' on the dataset card"),
    ({"calibration.datasets.1.audio_column": "track"}, "no column 'track' on the dataset card"),
    ({"calibration.datasets.1.clips": 9000}, "the split has 8802 examples; the recipe asks for clips: 9000"),
    ({"calibration.datasets.0.id": "fixie-ai/librispeech-asr"}, "not found on the hub"),
])
def test_a_bad_dataset_entry_is_named(online, tmp_path, capsys, change, expected):
    assert main(["check-sources", str(_recipe_copy(tmp_path, **change))]) == 1
    assert expected in capsys.readouterr().out


def test_script_based_hub_dataset_is_bad(online, tmp_path, capsys):
    recipe = _recipe_copy(tmp_path, **{"calibration.datasets.0.id": "openslr/librispeech_asr"})
    assert main(["check-sources", str(recipe)]) == 1
    out = capsys.readouterr().out
    assert "script-based dataset (librispeech_asr.py)" in out and "does not run loading scripts" in out


def test_offline_says_it_cannot_reach_the_hub_and_what_it_would_fetch(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(check_sources, "hub_api", lambda: pytest.fail("offline: the hub must not be asked"))
    assert main(["check-sources", str(RECIPES / "hubert_mert.yaml")]) == 2
    out = capsys.readouterr().out
    assert out.count("cannot reach the Hugging Face hub (HF_HUB_OFFLINE is set)") == 4
    assert "a build would fetch model facebook/hubert-base-ls960" in out
    assert f"a build would stream 5000 clips of {LIBRISPEECH}/clean:train.100" in out
    assert "the Hugging Face hub could not be reached: 4 source(s) not checked" in out


def test_unreachable_hub_is_not_reported_as_a_bad_id(monkeypatch, capsys):
    import requests

    hub = FakeHub(error=requests.ConnectionError("Max retries exceeded with url: /api/models"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(check_sources, "hub_api", lambda: hub)
    monkeypatch.setattr(check_sources, "_cached_snapshot", lambda repo_id: None)
    assert main(["check-sources", str(RECIPES / "hubert_mert.yaml")]) == 2
    out = capsys.readouterr().out
    assert "BAD" not in out and "cannot reach the Hugging Face hub (ConnectionError: Max retries" in out


def test_cached_dataset_and_local_models_need_nothing(online, tmp_path, capsys, monkeypatch):
    from upstream_merged.permutation.recipe import DatasetAudio

    recipe = _recipe_copy(tmp_path, **{"sources.a": "tiny:hubert:0", "sources.b": str(tmp_path)})
    data = yaml.safe_load(recipe.read_text())
    entry = DatasetAudio(**data["calibration"]["datasets"][0])
    cached = check_sources.check_dataset(entry, "speech", 0, 10.0)
    assert cached.status == "ok"
    monkeypatch.setattr("upstream_merged.cache.is_complete", lambda path: True)
    assert main(["check-sources", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert out.count("cached") >= 2 and "tiny model shipped in the package" in out and "local dir" in out


@pytest.mark.parametrize("text,kind", [("facebook/hubert-base-ls960", "hub"), ("bert-base-uncased", "hub"),
                                       ("BEATs_iter3.pt", "missing"), ("./models/hubert", "missing"),
                                       ("<BEATs checkpoint .pt>", "missing"), ("a/b/c", "missing"),
                                       ("tiny:hubert:0", "tiny"), ("small:mert", "small")])
def test_source_kind_matches_how_sources_resolve(text, kind):
    assert source_kind(text) == kind
