"""Run states, resume-checkpoint choice and the DONE-only-after-parse rule, without stock runs (a fake script)."""
import dataclasses
import json
import zipfile

from upstream_merged.superb.commands import plan_sweep
from upstream_merged.superb.runner import execute_run, last_states_checkpoint, run_lock, run_state
from upstream_merged.superb.spec import parse_spec

# stands in for run_downstream.py: train writes the checkpoints, evaluate prints what it was told to
FAKE = """
import pathlib, sys, zipfile
args = sys.argv[1:]
mode = args[args.index("-m") + 1]
if mode == "train":
    exp = pathlib.Path(args[args.index("-p") + 1]) if "-p" in args else pathlib.Path(args[args.index("-e") + 1]).parent
    exp.mkdir(parents=True, exist_ok=True)
    for name in ("dev-best.ckpt", "states-40.ckpt"):
        with zipfile.ZipFile(exp / name, "w") as zf:
            zf.writestr("data", "x")
    print("trained", " ".join(args))
else:
    print(open(pathlib.Path(__file__).with_name("said")).read())
"""


def _plan(tmp_path, make_ks_task, said: str):
    (tmp_path / "said").write_text(said)
    (tmp_path / "fake.py").write_text(FAKE)
    spec = parse_spec({"output_dir": str(tmp_path / "sweep"), "device": "cpu", "seeds": [0],
                       "entries": [{"name": "hubert_tiny"}], "tasks": [make_ks_task(tmp_path)]})
    plan = plan_sweep(spec)[0]
    spec.sweep_dir.mkdir()
    return plan


def _fake_script(monkeypatch, tmp_path):
    monkeypatch.setattr("upstream_merged.superb.commands.stock_script", lambda: tmp_path / "fake.py")


def test_done_only_after_the_metric_is_parsed(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    plan = _plan(tmp_path, make_ks_task, "test loss: 3.0")
    outcome = execute_run(plan)
    assert outcome.status == "failed" and "no 'test acc: <value>' line" in outcome.message
    assert outcome.log == str(plan.run_dir / "evaluate.log")
    assert run_state(plan) == "trained" and not (plan.run_dir / "DONE.json").exists()

    (tmp_path / "said").write_text("test acc: 0.625")
    outcome = execute_run(plan)  # training is not repeated: only evaluate runs again
    assert outcome.status == "done" and outcome.value == 0.625
    assert (plan.run_dir / "train.log").read_text().count("trained") == 1
    done = json.loads((plan.run_dir / "DONE.json").read_text())
    assert done["value"] == 0.625 and done["checkpoint"] == str(plan.expdir / "dev-best.ckpt")
    assert not (plan.run_dir / "FAILED.json").exists()
    assert execute_run(plan).status == "skipped"


def test_resume_picks_the_newest_complete_checkpoint(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    plan = _plan(tmp_path, make_ks_task, "test acc: 0.5")
    plan.expdir.mkdir(parents=True)
    for step in (20, 100):
        with zipfile.ZipFile(plan.expdir / f"states-{step}.ckpt", "w") as zf:
            zf.writestr("data", "x")
    (plan.expdir / "states-120.ckpt").write_bytes(b"PK\x03\x04 cut short by SIGKILL")  # no central directory
    assert last_states_checkpoint(plan.expdir) == plan.expdir / "states-100.ckpt"
    assert run_state(plan) == "interrupted"
    assert execute_run(plan).message == "resumed from states-100.ckpt"
    assert f"-m train -e {plan.expdir / 'states-100.ckpt'} --device cpu -o " in (plan.run_dir / "cmd.txt").read_text()


def test_missing_checkpoint_after_training_fails_with_a_fix(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    plan = dataclasses.replace(_plan(tmp_path, make_ks_task, "test acc: 0.5"), checkpoint="dev-clean-best.ckpt")
    outcome = execute_run(plan)
    assert outcome.status == "failed" and "set the task's 'checkpoint'" in outcome.message
    assert run_state(plan) == "interrupted"


def test_task_without_training_evaluates_the_frozen_upstream(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    (tmp_path / "said").write_text("wrote benchmark.stdlist.xml")
    (tmp_path / "fake.py").write_text(FAKE)
    task = {**make_ks_task(tmp_path), "name": "qbe", "downstream": "quesst14_dtw", "train": False, "metric": None,
            "split": "dev", "higher_is_better": True, "reference": None}
    spec = parse_spec({"output_dir": str(tmp_path / "sweep"), "device": "cpu", "seeds": [0],
                       "entries": [{"name": "hubert_tiny"}], "tasks": [task]})
    spec.sweep_dir.mkdir()
    plan = plan_sweep(spec)[0]
    outcome = execute_run(plan)
    assert outcome.status == "done" and outcome.value is None
    (line,) = (plan.run_dir / "cmd.txt").read_text().splitlines()
    assert "-m evaluate -u hubert_tiny -d quesst14_dtw -c " in line
    assert f"-p {plan.expdir} -t dev --seed 0 --device cpu -o " in line
    assert not (plan.run_dir / "train.log").exists()


def test_a_run_held_by_another_process_is_not_started_twice(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    plan = _plan(tmp_path, make_ks_task, "test acc: 0.5")
    plan.run_dir.mkdir(parents=True)
    with run_lock(plan.run_dir) as fd:
        assert fd is not None
        outcome = execute_run(plan)
    assert outcome.status == "failed" and "already running in another process" in outcome.message
    assert not (plan.run_dir / "train.log").exists() and not (plan.run_dir / "FAILED.json").exists()
    assert execute_run(plan).status == "done"  # the lock is released with its holder


def test_a_run_that_cannot_see_the_plugin_says_why(tmp_path, monkeypatch, make_ks_task):
    _fake_script(monkeypatch, tmp_path)
    plan = _plan(tmp_path, make_ks_task, "")
    (tmp_path / "fake.py").write_text("import sys\nprint(\"AttributeError: module 's3prl.hub' has no attribute 'hubert_tiny'\")\n"
                                      "sys.exit(1)\n")
    seen = {}

    def diagnosis(python, cwd=None, env=None):
        seen.update(python=python, cwd=cwd)
        return "the hook is off"

    monkeypatch.setattr("upstream_merged.registry.hook_problem", diagnosis)
    outcome = execute_run(plan)
    assert outcome.status == "failed" and "has no attribute 'hubert_tiny' (the hook is off)" in outcome.message
    assert seen["cwd"] == str(plan.run_dir)
