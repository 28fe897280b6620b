"""Config keys: every published config shape is accepted; keys the config class does not know are refused by name."""
import json
import logging
from pathlib import Path

import pytest
import torch

from upstream_merged.models.checkpoint import CheckpointError
from upstream_merged.models.config_keys import HUBERT_ALLOWED, MERT_ALLOWED, WAVLM_ALLOWED, WHISPER_ALLOWED
from upstream_merged.models.hubert import hubert_config_from_dict, load_hubert_family
from upstream_merged.models.wavlm import wavlm_config_from_dict
from upstream_merged.models.whisper import whisper_config_from_dict
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir, write_mert_dir

PUBLISHED = Path(__file__).parent / "published_configs"


def _published(name: str) -> dict:
    return json.loads((PUBLISHED / f"{name}.json").read_text())


@pytest.mark.parametrize("name,rate,layers", [
    ("facebook--hubert-base-ls960", 16000, 12),
    ("m-a-p--MERT-v0", 16000, 12),
    ("m-a-p--MERT-v0-public", 16000, 12),
    ("m-a-p--MERT-v1-95M", 24000, 12),
])
def test_published_hubert_family_configs_are_accepted(name, rate, layers):
    config, sample_rate, kind = hubert_config_from_dict(_published(name), name)
    assert (sample_rate, config.num_hidden_layers, config.hidden_size) == (rate, layers, 768)
    assert kind == ("mert" if "MERT" in name else "hubert")
    assert config.layerdrop == 0.0 and config.apply_spec_augment is False
    for key in ("gradient_checkpointing", "feat_extract_dropout", "auto_map", "deepnorm", "sample_rate"):
        assert not hasattr(config, key), key  # allow-listed keys are dropped, never forwarded


def test_published_mert_v1_330m_is_accepted_with_its_attention_relaxation():
    """Its keys are all known or allow-listed; attention_relax is a softmax-invariant shift (exact as plain attention)."""
    config, rate, kind = hubert_config_from_dict(_published("m-a-p--MERT-v1-330M"), "MERT-v1-330M")
    assert (rate, kind, config.num_hidden_layers, config.hidden_size, config.do_stable_layer_norm) == (24000, "mert", 24, 1024, True)
    assert (config.feat_extract_norm, config.conv_bias) == ("group", False)  # as published (HuBERT Large: layer, True)
    assert not hasattr(config, "attention_relax") and not hasattr(config, "mask_channel_prob")


FIXTURES = sorted(p for p in PUBLISHED.glob("*.json") if "preprocessor_config" not in p.name and "BEATs" not in p.name)


def _builder(config: dict):
    kind = config.get("model_type")
    if kind in ("hubert", "mert_model"):
        return lambda c, s: hubert_config_from_dict(c, s)[0]
    return {"wavlm": wavlm_config_from_dict, "whisper": whisper_config_from_dict}[kind]


def test_every_fixture_names_where_it_was_read():
    for path in sorted(PUBLISHED.glob("*.json")):
        source = path.with_name(path.name[: -len(".json")] + ".source.txt")
        assert source.is_file(), f"{path.name} has no {source.name}"
        text = source.read_text()
        assert ("huggingface.co" in text or "github:" in text or "FROM MEMORY" in text), source.name


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_published_config_fixture_is_accepted(path):
    config = json.loads(path.read_text())
    built = _builder(config)(config, path.stem)
    for key in ("mask_channel_prob", "gradient_checkpointing", "feat_extract_dropout", "auto_map", "replace_prob"):
        assert not hasattr(built, key), key  # allow-listed keys are dropped, never forwarded


@pytest.mark.parametrize("name", ["facebook--hubert-base-ls960", "facebook--hubert-large-ll60k", "m-a-p--MERT-v0",
                                  "m-a-p--MERT-v0-public", "m-a-p--MERT-v1-95M", "m-a-p--MERT-v1-330M"])
def test_tiny_models_with_the_published_key_sets_load_strictly(tmp_path, name):
    from upstream_merged.testing.published_layout import build_published_layout, write_published_layout_dir

    published = _published(name)
    model = build_published_layout(published, seed=7)
    directory = write_published_layout_dir(tmp_path / name, published, model)
    written = json.loads((directory / "config.json").read_text())
    assert set(written) == set(published)  # the key set as users download it; only sizes shrink
    if "MERT" in name:  # MERT's remote code saves a bare HubertModel state dict with legacy weight-norm names
        assert (directory / "pytorch_model.bin").is_file()
    loaded = load_hubert_family(directory)
    assert loaded.kind == ("mert" if "MERT" in name else "hubert")
    assert loaded.sample_rate == published.get("sample_rate", 16000)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], tensor), key


def test_published_mert_v1_95m_preprocessor_sets_normalisation(tmp_path):
    from upstream_merged.testing.published_layout import build_published_layout, write_published_layout_dir

    published = _published("m-a-p--MERT-v1-95M")
    preprocessor = json.loads((PUBLISHED / "m-a-p--MERT-v1-95M.preprocessor_config.json").read_text())
    directory = write_published_layout_dir(tmp_path, published, build_published_layout(published, 8), preprocessor)
    loaded = load_hubert_family(directory)
    assert (loaded.normalize, loaded.sample_rate) == (preprocessor["do_normalize"], preprocessor["sampling_rate"])


def test_refusal_says_which_key_to_report_for_which_checkpoint():
    config = dict(_published("m-a-p--MERT-v1-330M"), mask_span_policy="static")
    with pytest.raises(CheckpointError) as info:
        hubert_config_from_dict(config, "/cache/m-a-p/MERT-v1-330M")
    message = str(info.value)
    assert "mask_span_policy" in message and "/cache/m-a-p/MERT-v1-330M" in message
    assert "report" in message and "checkpoint id" in message and "deleting" in message


def test_published_wavlm_base_plus_config_is_accepted():
    config = wavlm_config_from_dict(_published("microsoft--wavlm-base-plus"), "wavlm-base-plus")
    assert (config.num_hidden_layers, config.hidden_size, config.num_buckets) == (12, 768, 320)
    assert not hasattr(config, "mask_channel_selection") and not hasattr(config, "replace_prob")


def test_published_whisper_base_config_is_accepted():
    config = whisper_config_from_dict(_published("openai--whisper-base"), "whisper-base")
    assert (config.encoder_layers, config.d_model, config.num_mel_bins) == (6, 512, 80)
    assert config.encoder_layerdrop == 0.0


@pytest.mark.parametrize("name,build", [
    ("facebook--hubert-base-ls960", lambda c: hubert_config_from_dict(c, "cfg")),
    ("m-a-p--MERT-v1-95M", lambda c: hubert_config_from_dict(c, "cfg")),
    ("microsoft--wavlm-base-plus", lambda c: wavlm_config_from_dict(c, "cfg")),
    ("openai--whisper-base", lambda c: whisper_config_from_dict(c, "cfg")),
])
@pytest.mark.parametrize("typo", ["num_hiden_layers", "hidden_sise", "encoder_layer"])
def test_unknown_config_key_is_refused_by_name(name, build, typo):
    config = dict(_published(name), **{typo: 3})
    with pytest.raises(CheckpointError, match=typo):
        build(config)


def test_mert_only_keys_are_not_allowed_in_a_plain_hubert_config():
    config = dict(_published("facebook--hubert-base-ls960"), sample_rate=24000)
    with pytest.raises(CheckpointError, match="sample_rate"):
        hubert_config_from_dict(config, "cfg")


def test_allow_lists_document_every_key():
    for table in (HUBERT_ALLOWED, MERT_ALLOWED, WAVLM_ALLOWED, WHISPER_ALLOWED):
        assert all(isinstance(why, str) and len(why) > 10 for why in table.values())


def test_unknown_key_in_a_checkpoint_dir_is_refused_at_load(tmp_path):
    write_hubert_dir(tmp_path, build_tiny_hubert(seed=1), config_extra={"num_hiden_layers": 4})
    with pytest.raises(CheckpointError, match="num_hiden_layers") as info:
        load_hubert_family(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_mert_dir_without_preprocessor_normalises_and_logs(tmp_path, caplog, version):
    write_mert_dir(tmp_path, build_tiny_hubert(seed=2), version=version)
    (tmp_path / "preprocessor_config.json").unlink()
    with caplog.at_level(logging.WARNING, logger="upstream_merged.models.hubert"):
        loaded = load_hubert_family(tmp_path)
    assert loaded.normalize is True
    assert any("preprocessor_config.json" in r.getMessage() and "ON" in r.getMessage() for r in caplog.records)


def test_hubert_dir_without_preprocessor_follows_its_family_and_logs(tmp_path, caplog):
    write_hubert_dir(tmp_path / "base", build_tiny_hubert(seed=3))
    large = build_tiny_hubert(seed=3, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    write_hubert_dir(tmp_path / "large", large)
    for sub in ("base", "large"):
        (tmp_path / sub / "preprocessor_config.json").unlink()
    with caplog.at_level(logging.WARNING, logger="upstream_merged.models.hubert"):
        assert load_hubert_family(tmp_path / "base").normalize is False
        assert load_hubert_family(tmp_path / "large").normalize is True
    messages = [r.getMessage() for r in caplog.records]
    assert any("OFF" in m for m in messages) and any("ON" in m for m in messages)


def test_preprocessor_do_normalize_still_wins(tmp_path):
    write_mert_dir(tmp_path, build_tiny_hubert(seed=4), version="v1")
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), do_normalize=False)))
    assert load_hubert_family(tmp_path).normalize is False
