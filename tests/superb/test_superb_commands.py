"""Exact stock command lines: -p under the sweep dir, fixed --seed, --device, -e when resuming."""
import sys
from pathlib import Path

from upstream_merged.superb.commands import (default_checkpoint, evaluate_command, plan_sweep, shell_line,
                                             train_command)
from upstream_merged.superb.spec import parse_spec
from upstream_merged.testing.s3prl_run import CONFIG_DIR, stock_script

SMALL = str(CONFIG_DIR / "speech_commands_cpu_small.yaml")


def _spec(tmp_path):
    return parse_spec({
        "output_dir": str(tmp_path / "sweep"), "device": "cpu", "seeds": [3, 4],
        "entries": [{"name": "merged_hubert_mert", "label": "merged", "ckpt": "/m/dir", "finetune": True,
                     "overrides": {"args.upstream_feature_selection": "hidden_states"}},
                    {"name": "hubert_tiny", "tasks": ["ks"]}],
        "tasks": [{"name": "ks", "downstream": "speech_commands", "config": SMALL, "metric": "acc",
                   "higher_is_better": True, "overrides": {"config.downstream_expert.datarc.speech_commands_root": "/d"}},
                  {"name": "ks2", "downstream": "speech_commands", "config": SMALL, "metric": "acc",
                   "higher_is_better": True, "checkpoint": "states-40.ckpt"}],
    })


def test_plan_is_the_cross_product_minus_restricted_tasks(tmp_path):
    plans = plan_sweep(_spec(tmp_path))
    assert [p.run_id for p in plans] == ["merged/ks/seed3", "merged/ks/seed4", "merged/ks2/seed3", "merged/ks2/seed4",
                                         "hubert_tiny/ks/seed3", "hubert_tiny/ks/seed4"]


def test_train_and_evaluate_commands_are_exact(tmp_path):
    plan = plan_sweep(_spec(tmp_path))[0]
    run_dir = tmp_path / "sweep" / "runs" / "merged" / "ks" / "seed3"
    assert plan.run_dir == run_dir and plan.expdir.is_absolute()
    assert train_command(plan) == [
        sys.executable, str(stock_script()), "-m", "train", "-u", "merged_hubert_mert", "-k", "/m/dir", "-f",
        "-d", "speech_commands", "-c", SMALL, "-p", str(run_dir / "exp"), "--seed", "3", "--device", "cpu",
        "-o", "config.downstream_expert.datarc.speech_commands_root=/d,,args.upstream_feature_selection=hidden_states"]
    assert evaluate_command(plan) == [sys.executable, str(stock_script()), "-m", "evaluate",
                                      "-e", str(run_dir / "exp" / "dev-best.ckpt"), "-t", "test", "--device", "cpu"]
    resume = train_command(plan, run_dir / "exp" / "states-20.ckpt")
    assert resume[2:6] == ["-m", "train", "-e", str(run_dir / "exp" / "states-20.ckpt")]
    assert "site-packages" not in str(plan.expdir)


def test_checkpoint_comes_from_the_config(tmp_path):
    assert default_checkpoint(SMALL, {}) == "dev-best.ckpt"
    assert default_checkpoint(SMALL, {"config.runner.eval_dataloaders": "['dev-clean']"}) == "dev-clean-best.ckpt"
    assert default_checkpoint(SMALL, {"config.runner.eval_dataloaders": "[]"}) == "states-40.ckpt"
    assert plan_sweep(_spec(tmp_path))[2].checkpoint == "states-40.ckpt"


def test_shell_line_is_copy_pasteable(tmp_path):
    plan = plan_sweep(_spec(tmp_path))[0]
    line = shell_line(plan, evaluate_command(plan))
    assert line.startswith(f"cd {plan.run_dir} && {sys.executable} ")
    assert Path(line.split()[1]) == plan.run_dir
