"""The shared tiny sweep (2 good entries x KS + IC, one failing pair): tables from the real logs, skip on rerun."""
import csv
import re
import subprocess

import pytest

from upstream_merged.__main__ import main
from upstream_merged.superb import collect, run_sweep
from upstream_merged.superb.results import parse_metric

BAD_ENTRY = "nope_entry"  # the failing entry of the shared sweep (conftest.py)

GOOD = [(e, t) for e in ("hubert_tiny", "merged") for t in ("ks", "ic")]


def test_table_holds_the_metrics_printed_by_the_stock_evaluations(tiny_sweep):
    table = tiny_sweep.table
    for entry, task in GOOD:
        run_dir = tiny_sweep.dir / "runs" / entry / task / "seed0"
        printed = (run_dir / "evaluate.log").read_text()
        value = table.cells[(entry, task)].mean
        assert value == parse_metric(printed, "test", "acc") and 0.0 <= value <= 1.0
        # the expert's own log.log ends with the same evaluation ("test at step <n>: <value>")
        last = re.findall(r"^test at step \d+: (\S+)$", (run_dir / "exp" / "log.log").read_text(), re.M)[-1]
        assert float(last) == pytest.approx(value, abs=1e-12)
    assert table.normalised[("hubert_tiny", "ks")] == pytest.approx(1000.0)
    ref, merged = table.cells[("hubert_tiny", "ic")].mean, table.cells[("merged", "ic")].mean
    assert table.normalised[("merged", "ic")] == (pytest.approx(1000 * merged / ref) if ref else None)
    assert table.superb["hubert_tiny"] == pytest.approx(1000 * (table.value("hubert_tiny", "ks")
                                                                + table.value("hubert_tiny", "ic")) / 2)
    md = (tiny_sweep.dir / "results.md").read_text()
    assert f"| merged | {table.cells[('merged', 'ks')].mean:.4f} ± 0.0000 (n=1) |" in md
    assert f"| {BAD_ENTRY} | – | n/a |" in md  # failed vs. not planned (the entry runs KS only)
    rows = {(r["entry"], r["task"]): r for r in csv.DictReader((tiny_sweep.dir / "results.csv").open())}
    assert set(rows) == {(BAD_ENTRY, "ks"), *GOOD}
    assert float(rows[("merged", "ic")]["mean"]) == table.value("merged", "ic")
    assert (tiny_sweep.dir / "results.png").stat().st_size > 0
    assert collect(tiny_sweep.dir).cells == table.cells  # re-collecting the directory gives the same table


def test_commands_are_recorded_with_absolute_expdirs_and_fixed_seeds(tiny_sweep):
    commands = (tiny_sweep.dir / "commands.sh").read_text()
    for entry, task in GOOD:
        run_dir = tiny_sweep.dir / "runs" / entry / task / "seed0"
        train, evaluate = (run_dir / "cmd.txt").read_text().splitlines()
        assert f"-p {run_dir / 'exp'} --seed 0 --device cpu" in train and train in commands
        assert f"-m evaluate -e {run_dir / 'exp' / 'dev-best.ckpt'} -t test --device cpu" in evaluate
        assert evaluate in commands
    assert commands.count("-m train") == 5 and commands.count("-m evaluate") == 4
    assert "site-packages/s3prl/result" not in commands


def test_failing_pair_is_reported_with_its_log_and_does_not_stop_the_others(tiny_sweep):
    failed = tiny_sweep.table.failed
    assert [(r["entry"], r["task"]) for r in failed] == [(BAD_ENTRY, "ks")]
    log = tiny_sweep.dir / "runs" / BAD_ENTRY / "ks" / "seed0" / "train.log"
    assert failed[0]["log"] == str(log) and "has no attribute 'nope_entry'" in log.read_text()
    assert "has no attribute 'nope_entry'" in failed[0]["message"]
    assert f"log: `{log}`" in (tiny_sweep.dir / "results.md").read_text()
    assert all(r["status"] == "done" for r in tiny_sweep.table.runs if r["entry"] != BAD_ENTRY)
    # one progress line per run, the failure naming its log
    runs = [line for line in tiny_sweep.progress if re.match(r"\[\d/5\] ", line)]
    assert len(runs) == 5
    assert any(line.startswith("[") and "failed" in line and str(log) in line for line in runs)


def test_rerun_starts_no_finished_run(tiny_sweep, monkeypatch):
    launched = []

    class NoRun:
        def __init__(self, argv, cwd=None, **kwargs):
            launched.append(cwd)

        def wait(self):
            return 1  # the failed pair is retried; it fails again without starting anything

    monkeypatch.setattr(subprocess, "Popen", NoRun)
    table = run_sweep(tiny_sweep.spec)
    assert launched == [str(tiny_sweep.dir / "runs" / BAD_ENTRY / "ks" / "seed0")]
    assert table.cells == tiny_sweep.table.cells
    assert "has no attribute 'nope_entry'" in table.failed[0]["message"]  # still the real error, not our log header


def test_dry_run_prints_the_commands_and_writes_nothing(tiny_sweep, tmp_path, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text((tiny_sweep.dir / "spec.yaml").read_text())
    before = sorted(p for p in tiny_sweep.dir.rglob("*"))
    assert main(["sweep", str(spec_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# hubert_tiny/ks/seed0: done" in out and f"# {BAD_ENTRY}/ks/seed0: new" in out
    assert out.count("-m train") == 1 and f"-u {BAD_ENTRY}" in out
    assert sorted(p for p in tiny_sweep.dir.rglob("*")) == before
    fresh = tmp_path / "fresh"
    assert main(["sweep", str(spec_file), "--dry-run", "--output-dir", str(fresh)]) == 0
    assert capsys.readouterr().out.count("-m train") == 5 and not fresh.exists()


def test_collect_only_rewrites_results(tiny_sweep, tmp_path, capsys):
    (tiny_sweep.dir / "results.md").unlink()
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text((tiny_sweep.dir / "spec.yaml").read_text())
    assert main(["sweep", str(spec_file), "--collect-only"]) == 1  # a failed run: exit 1
    assert "| hubert_tiny |" in capsys.readouterr().out and (tiny_sweep.dir / "results.md").is_file()
