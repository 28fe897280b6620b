"""tools/reproduce_table.py: Table I plan and scoring, and the shortened reproduction (--quick) end to end."""
from __future__ import annotations

import csv
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    """The tool imported as a module."""
    tools = str(REPO / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module("reproduce_table")


def test_full_plan_is_table_i_plus_parts(tool):
    plan = tool.build_plan("full")
    table_i, calibration, fusion = plan.parts
    assert [r.paper_id for r in table_i.rows] == [1, 2, 3, 4, 5, 6, 7, 8, 9, None]
    assert [r.entry for r in table_i.rows][:2] == ["hubert_small", "mert_small"]
    assert table_i.rows[-1].entry == "merged_hubert_mert_residual_small"
    assert {t.group for t in plan.tasks} == {"speech", "music"} and len(plan.seeds) >= 2
    assert [r.entry for r in calibration.rows] == ["merged_hubert_mert_small"] and calibration.rows[0].model_config
    assert {r.entry: r.finetune for r in fusion.rows} == {
        "fusion_hubert_mert_small_ws": False, "fusion_hubert_mert_small_hconv": True,
        "fusion_hubert_mert_small_chconv": True, "fusion_hubert_mert_small_gumd": True}


def test_synthetic_calibration_recipe_differs_from_the_entry_default_only_in_audio(tool):
    from upstream_merged.hub.common import packaged_recipe
    from upstream_merged.recipe import load_recipe

    ours = load_recipe(str(tool.SYNTHETIC_CALIBRATION_RECIPE))
    default = load_recipe(str(packaged_recipe("small_hubert_mert")))
    assert ours.calibration.synthetic is not None and ours.calibration.manifest is None
    assert default.calibration.manifest and default.calibration.manifest.startswith("synth:")
    assert (ours.sources, ours.preset, ours.seed) == (default.sources, default.preset, default.seed)


def test_spec_commands_carry_entries_flags_and_budget(tool, tmp_path):
    from upstream_merged.superb.commands import plan_sweep, train_command

    plan = tool.build_plan("full", steps=40)
    argvs = {}
    for part in plan.parts:
        for run in plan_sweep(tool.sweep_spec(plan, part, tmp_path)):
            argvs[(run.entry, run.task, run.seed)] = train_command(run)
    assert len(argvs) == 15 * len(plan.tasks) * len(plan.seeds)
    hconv = argvs[("fusion_hconv", "ks", 0)]
    assert hconv[hconv.index("-u") + 1] == "fusion_hubert_mert_small_hconv" and "-f" in hconv
    assert "-f" not in argvs[("fusion_ws", "ks", 0)]
    synthcal = argvs[("cnn_ffn_attn_synthcal", "nsynth_pitch", 1)]
    assert synthcal[synthcal.index("-g") + 1] == str(tool.SYNTHETIC_CALIBRATION_RECIPE)
    overrides = synthcal[synthcal.index("-o") + 1]
    assert "config.runner.total_steps=40" in overrides and "config.downstream_expert.datarc.max_seconds=2.0" in overrides
    assert synthcal[synthcal.index("--seed") + 1] == "1"


def test_scores_normalise_each_group_to_its_encoder(tool):
    plan = tool.build_plan("full")
    tasks = plan.tasks  # ks, sid (speech); nsynth_pitch, nsynth_instrument (music)
    acc = {"hubert_small": [0.8, 0.5, 0.3, 0.4], "mert_small": [0.4, 0.25, 0.6, 0.8], "x": [0.8, 0.5, 0.6, 0.8]}
    values = {(label, t.name, seed): a * (1 + 0.1 * seed) for label, accs in acc.items()
              for t, a in zip(tasks, accs) for seed in (0, 1)}
    hubert, mert, x = (tool.scores(values, tasks, label, [0, 1]) for label in ("hubert_small", "mert_small", "x"))
    assert hubert["speech"].mean == pytest.approx(1000) and mert["music"].mean == pytest.approx(1000)
    assert mert["speech"].mean == pytest.approx(500) and hubert["music"].mean == pytest.approx(500)
    assert hubert["average"].mean == pytest.approx(750) and x["average"].mean == pytest.approx(1000)
    # per-seed scores against the reference's seed mean: 1000 * (1 +- 0.05/1.05)
    assert hubert["speech"].values == pytest.approx((1000 / 1.05, 1100 / 1.05))
    assert hubert["ks"].std > 0 and hubert["ks"].n == 2


def test_scores_leave_out_seeds_and_groups_without_runs(tool):
    plan = tool.build_plan("full")
    ks, sid = plan.tasks[0].name, plan.tasks[1].name
    values = {("hubert_small", ks, 0): 0.5, ("hubert_small", sid, 0): 0.5, ("hubert_small", ks, 1): 0.5,
              ("y", ks, 0): 0.25, ("y", sid, 0): 0.5}
    y = tool.scores(values, plan.tasks, "y", [0, 1])
    assert y["speech"].values == pytest.approx((750.0,))  # seed 1 lacks sid
    assert y["music"].mean is None and y["average"].mean is None  # no music reference ran
    assert y["nsynth_pitch"].text(3) == "–"


def test_tasks_option_keeps_only_the_named_tasks(tool):
    plan = tool.build_plan("full", tasks=["ks", "nsynth_pitch"])
    assert [(t.name, t.group) for t in plan.tasks] == [("ks", "speech"), ("nsynth_pitch", "music")]
    assert len(plan.parts) == 3
    with pytest.raises(ValueError, match="--tasks"):
        tool.build_plan("quick", tasks=["sid"])


def test_unknown_profile_and_part_are_refused(tool):
    with pytest.raises(ValueError, match="unknown profile"):
        tool.build_plan("huge")
    with pytest.raises(ValueError, match="--parts"):
        tool.build_plan("full", parts=["table_ii"])


def test_quick_reproduction_writes_the_table_from_stock_logs(tmp_path):
    """The shortened reproduction CI runs: two stock train + evaluate runs, the table parsed from their logs."""
    work, out = tmp_path / "work", tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "reproduce_table.py"), "--quick", "--work-dir", str(work),
                           "--out", str(out), "--jobs", "2", "--heartbeat", "600"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = list(csv.DictReader((out / "table_i.csv").open()))
    accs = {r["row"]: float(r["mean"]) for r in rows if r["kind"] == "test_acc"}
    assert set(accs) == {"hubert_small", "linear"}
    # every number equals the last 'test acc: <value>' the stock evaluate printed in that run's log
    sweeps = list((work / "sweeps").iterdir())
    assert len(sweeps) == 1
    for label, acc in accs.items():
        log = (sweeps[0] / "runs" / label / "ks" / "seed0" / "evaluate.log").read_text()
        assert "run_downstream.py -m evaluate" in log
        printed = re.findall(r"^test acc: ([0-9.eE+-]+)$", log, flags=re.MULTILINE)
        assert printed and float(printed[-1]) == pytest.approx(acc, abs=1e-6)
        assert 0.0 <= acc <= 1.0
    scores = {r["row"]: float(r["mean"]) for r in rows if r["column"] == "speech"}
    assert scores["hubert_small"] == pytest.approx(1000.0)
    assert scores["linear"] == pytest.approx(1000.0 * accs["linear"] / accs["hubert_small"], rel=1e-4)  # csv: 6 digits
    md = (out / "table_i.md").read_text()
    assert f"| {accs['linear']:.3f} |" in md and "run_downstream.py -m train -u merged_hubert_mert_linear_small" in md
    assert (out / "table_i.png").stat().st_size > 0
    assert "test acc:" in (out / "reproduction" / "run_logs.txt").read_text()


def test_budget_executor_starts_nothing_after_the_deadline(tool, tmp_path):
    from upstream_merged.superb.commands import plan_sweep

    plan = tool.build_plan("quick")
    runs = plan_sweep(tool.sweep_spec(plan, plan.parts[0], tmp_path))
    seen = []
    outcomes = tool.BudgetedExecutor(jobs=2, deadline=0.0).run(runs, seen.append)
    assert len(outcomes) == len(seen) == len(runs) == 2
    assert all(o.status == "failed" and "not started" in o.message for o in outcomes)
    assert not any(run.run_dir.exists() for run in runs)
