"""tools/cached_probe.py: probe writes per-clip predictions per seed; compare pairs two result files by clip."""
import json
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))
import cached_probe  # noqa: E402


def test_override_strings_split_like_run_downstream():
    assert cached_probe.parse_override_string("config.a.b=1,,config.c=['dev'],,config.p=/x=y") == {
        "config.a.b": "1", "config.c": "['dev']", "config.p": "/x=y"}
    assert cached_probe.parse_override_string(None) == {}
    with pytest.raises(ValueError, match="no '='"):
        cached_probe.parse_override_string("config.a.b")


def test_probe_then_compare(speech_commands_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    root = speech_commands_root
    override = (f"config.downstream_expert.datarc.speech_commands_root={root / 'speech_commands_v0.01'},,"
                f"config.downstream_expert.datarc.speech_commands_test_root={root / 'speech_commands_test_set_v0.01'},,"
                "config.runner.total_steps=20,,config.runner.eval_step=10")
    out = {}
    for entry in ("hubert_tiny", "mert_v1_tiny"):
        out[entry] = tmp_path / f"{entry}.json"
        assert cached_probe.main(["probe", "-u", entry, "-d", "speech_commands", "-c",
                                  str(TOOLS.parent / "downstream_configs" / "speech_commands_cpu_small.yaml"),
                                  "-o", override, "--seeds", "0", "1", "--schedule", "stock", "--out",
                                  str(out[entry]), "-q"]) == 0
    results = json.loads(out["hubert_tiny"].read_text())
    assert [r["seed"] for r in results] == [0, 1] and all(r["steps"] == 20 for r in results)
    assert len(results[0]["predictions"]) == results[0]["test"]["total"] == 24
    assert (tmp_path / "cache" / "features").is_dir()  # extracted into the plugin cache
    capsys.readouterr()
    assert cached_probe.main(["compare", str(out["hubert_tiny"]), str(out["hubert_tiny"]), "--resamples", "200"]) == 0
    assert "A - B = +0.0000 [" in capsys.readouterr().out  # a run against itself: no difference
    assert cached_probe.main(["compare", str(out["hubert_tiny"]), str(out["mert_v1_tiny"]), "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "24 paired test clips" in text and "over clips and seeds" in text and "McNemar" in text
