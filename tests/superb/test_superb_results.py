"""Metric parsing, normalisation (reference = 1000), SUPERB score, tables and chart, on a hand-made sweep dir."""
import csv
import json

import pytest

from upstream_merged.superb.commands import plan_sweep
from upstream_merged.superb.results import (MetricNotFound, collect, normalise, parse_metric, superb_score,
                                            write_results)
from upstream_merged.superb.spec import dump_spec, parse_spec
from upstream_merged.testing.s3prl_run import CONFIG_DIR

SMALL = str(CONFIG_DIR / "speech_commands_cpu_small.yaml")


def test_parse_metric_takes_the_last_line_even_after_a_progress_bar():
    text = ("[Runner] - Start\ndev acc: 0.1\ntest acc: 0.25\n"
            "test: 100%|##########| 2/2 [00:00<00:00, 9.1it/s]\rtest acc: 0.75\nsv-voxceleb1/test-EER: 0.12\n")
    assert parse_metric(text, "test", "acc") == 0.75
    assert parse_metric(text, "dev", "acc") == 0.1
    assert parse_metric(text, "test", "EER", regex=r"sv-voxceleb1/test-EER: ([0-9.]+)") == 0.12
    assert parse_metric("mode test acc 0.5 der 0.3", "test", "der", regex=r"mode test acc \S+ der (\S+)") == 0.3
    with pytest.raises(MetricNotFound, match="'test wer: <value>'"):
        parse_metric(text, "test", "wer")
    with pytest.raises(MetricNotFound):
        parse_metric("pretest acc: 0.3", "test", "acc")  # a longer name that ends like ours is not ours


def test_normalise_and_superb_score():
    assert normalise(0.9, 0.8, True) == pytest.approx(1125.0)
    assert normalise(0.05, 0.10, False) == pytest.approx(2000.0)  # half the error: twice the score
    assert normalise(0.1, 0.0, True) is None
    # baseline 0, sota 1000: a task at its baseline scores 0, at SOTA 1000, error rates in their own direction
    refs = {"ks": (0.5, 1.0), "asr": (0.3, 0.1)}
    assert superb_score({"ks": 1.0, "asr": 0.3}, refs) == pytest.approx(500.0)
    assert superb_score({"ks": 0.75, "asr": 0.2}, refs) == pytest.approx(500.0)


def _fake_sweep(tmp_path):
    spec = parse_spec({
        "output_dir": str(tmp_path / "sweep"), "seeds": [0, 1], "reference_entry": "ref",
        "entries": [{"name": "ref"}, {"name": "new"}, {"name": "broken"}],
        "tasks": [{"name": "ks", "downstream": "speech_commands", "config": SMALL, "metric": "acc", "higher_is_better": True,
                   "group": "speech", "reference": {"baseline": 0.0, "sota": 1.0}},
                  {"name": "asr", "downstream": "asr", "config": SMALL, "metric": "wer", "split": "test-clean",
                   "higher_is_better": False, "group": "speech", "reference": {"baseline": 0.5, "sota": 0.0}},
                  {"name": "genre", "downstream": "speech_commands", "config": SMALL, "metric": "acc",
                   "higher_is_better": True, "group": "music"}],
    })
    values = {("ref", "ks"): [0.8, 0.6], ("ref", "asr"): [0.2, 0.2], ("ref", "genre"): [0.5, 0.5],
              ("new", "ks"): [0.9, 0.7], ("new", "asr"): [0.1, 0.1], ("new", "genre"): [0.4, 0.6]}
    spec.sweep_dir.mkdir(parents=True)
    (spec.sweep_dir / "spec.yaml").write_text(dump_spec(spec))
    for plan in plan_sweep(spec):
        plan.run_dir.mkdir(parents=True)
        if plan.entry == "broken":
            if plan.task == "ks" and plan.seed == 0:
                (plan.run_dir / "FAILED.json").write_text(json.dumps({"message": "boom", "log": "/x/train.log"}))
            continue
        value = values[(plan.entry, plan.task)][plan.seed]
        (plan.run_dir / "DONE.json").write_text(json.dumps({"value": value, "log": str(plan.run_dir / "evaluate.log")}))
    return spec


def test_collect_tabulates_means_normalised_and_superb(tmp_path):
    spec = _fake_sweep(tmp_path)
    table = collect(spec.sweep_dir)
    assert table.cells[("ref", "ks")].mean == pytest.approx(0.7)
    assert table.cells[("ref", "ks")].std == pytest.approx(0.141421356, rel=1e-6)
    assert table.normalised[("ref", "asr")] == pytest.approx(1000.0)
    assert table.normalised[("new", "ks")] == pytest.approx(1000 * 0.8 / 0.7)
    assert table.normalised[("new", "asr")] == pytest.approx(2000.0)
    speech = (1000 * 0.8 / 0.7 + 2000.0) / 2
    assert table.group_scores["new"]["speech"] == pytest.approx(speech)
    assert table.group_scores["new"]["average"] == pytest.approx((speech + 1000.0) / 2)  # mean of group scores
    assert table.superb["new"] == pytest.approx(1000 * (0.8 + 0.8) / 2)
    assert table.superb["broken"] is None and table.group_scores["broken"]["average"] is None
    assert [r["status"] for r in table.runs if r["entry"] == "broken"] == ["failed"] + ["pending"] * 5

    paths = write_results(table)
    assert {p.name for p in paths} == {"results.md", "results.csv", "runs.csv", "results.png"}
    md = (spec.sweep_dir / "results.md").read_text()
    assert "| new | 0.8000 ± 0.1414 (n=2) | 0.1000 ± 0.0000 (n=2) | 0.5000 ± 0.1414 (n=2) |" in md
    assert "ref = 1000 per task" in md and "| speech | music | average |" in md
    assert "`broken/ks/seed0`: boom — log: `/x/train.log`" in md
    rows = list(csv.DictReader((spec.sweep_dir / "results.csv").open()))
    new_asr = next(r for r in rows if r["entry"] == "new" and r["task"] == "asr")
    assert float(new_asr["normalised"]) == pytest.approx(2000.0) and new_asr["metric"] == "test-clean wer"
    assert (spec.sweep_dir / "results.png").read_bytes()[:4] == b"\x89PNG"


def test_a_moved_sweep_still_collects(tmp_path):
    import shutil

    spec = _fake_sweep(tmp_path)
    moved = tmp_path / "elsewhere"
    shutil.move(str(spec.sweep_dir), moved)
    table = collect(moved)
    assert table.sweep_dir == moved and table.value("new", "asr") == pytest.approx(0.1)
    assert all(r["log"].startswith(str(spec.sweep_dir)) for r in table.runs if r["status"] == "done")  # as recorded
