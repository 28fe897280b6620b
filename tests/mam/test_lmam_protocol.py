"""L-MAM protocol: λ's own learning rate (lambda_lr_scale), and finetune vs MAM+finetune vs L-MAM end to end through
stock `run_downstream.py -f` (SUPERB sweep runner) with the learned λ per layer and its spread over two seeds."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from upstream_merged.mam.learnable import LambdaBank, find_lambda_states
from upstream_merged.recipe import parse_recipe

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import lmam_protocol  # noqa: E402
import make_librispeech  # noqa: E402

STEPS = 2


def _adam_step(bank: LambdaBank, lr: float = 0.01) -> float:
    """Logit change after one Adam step pushing λ up."""
    before = float(torch.logit(bank.values()[0].detach()))
    optimizer = torch.optim.Adam(bank.parameters(), lr=lr)
    (-bank.values().sum()).backward()
    optimizer.step()
    return float(torch.logit(bank.values()[0].detach())) - before


def test_lambda_lr_scale_multiplies_the_adam_step_of_lambda_and_round_trips():
    plain, scaled = LambdaBank([0, 1], [0.05, 0.05]), LambdaBank([0, 1], [0.05, 0.05], lr_scale=10.0)
    assert torch.allclose(plain.values(), scaled.values())  # same λ at init
    assert _adam_step(scaled) == pytest.approx(10 * _adam_step(plain), rel=1e-3)
    assert "logit_scale" not in plain.state_dict() and "logit_scale" in scaled.state_dict()
    state = {f"mam_lambda.{k}": v for k, v in scaled.state_dict().items()}
    assert find_lambda_states(state)["mam_lambda"] == pytest.approx(scaled.as_dict())

    sources = {"target": "tiny:hubert:0", "source": "tiny:bert:0"}
    assert parse_recipe({"method": "mam", "sources": sources, "learnable": True, "lambda_init": 0.1,
                         "lambda_lr_scale": 5}).lambda_lr_scale == 5
    with pytest.raises(ValueError, match="lambda_lr_scale` only applies with `learnable: true"):
        parse_recipe({"method": "mam", "sources": sources, "lambda": 0.1, "lambda_lr_scale": 5})
    with pytest.raises(ValueError, match="greater than 0"):
        parse_recipe({"method": "mam", "sources": sources, "learnable": True, "lambda_init": 0.1, "lambda_lr_scale": 0})


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are required (tools/setup_env.sh installs them)")
    out = tmp_path_factory.mktemp("protocol_librispeech")
    make_librispeech.build(out, speakers=2, chapters=1, utterances=2, seed=0, workers=2)
    return out


def test_protocol_runs_three_arms_and_reports_learned_lambda_spread(tmp_path, librispeech, plugin_cache_env, capsys):
    overrides = {f"config.downstream_expert.datarc.{k}": str(librispeech / v) for k, v in
                 {"libri_root": "LibriSpeech", "bucket_file": "len_for_bucket", "dict_path": "char.dict"}.items()}
    overrides.update({"config.runner.total_steps": STEPS, "config.runner.eval_step": STEPS,
                      "config.runner.save_step": STEPS, "config.runner.log_step": 1})
    protocol = {
        "output_dir": "out", "target": "tiny:hubert:0", "source": "tiny:bert:0", "lambda": 0.05,
        "lambda_lr_scale": 50.0, "seeds": [0, 1], "device": "cpu", "env": plugin_cache_env,
        "task": {"name": "asr", "downstream": "asr", "config": str(REPO_ROOT / "downstream_configs" / "asr_cpu_small.yaml"),
                 "overrides": overrides, "metric": "wer", "split": "test-clean", "higher_is_better": False,
                 # random tiny models never beat WER 100 %, so no dev-clean-best.ckpt: evaluate the last state
                 "checkpoint": f"states-{STEPS}.ckpt"},
    }
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(protocol))

    assert lmam_protocol.main([str(path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    trains = [line for line in lines if "-m train" in line]
    assert len(trains) == 6 and all(" -f " in line for line in trains)
    assert sum("-u hubert_base_hf" in t for t in trains) == sum("-u mam_hubert_bert " in t for t in trains) == 2
    assert sum("-u lmam_hubert_bert " in t for t in trains) == 2
    budget = {line.split(" -o ", 1)[1] for line in trains}
    assert len(budget) == 1  # the same -o (data, steps) for every arm and seed

    assert lmam_protocol.main([str(path), "--jobs", "2", "--quiet"]) == 0, capsys.readouterr()
    out = tmp_path / "out"
    summary = json.loads((out / "lmam_protocol.json").read_text())
    assert set(summary["arms"]) == {"finetune", "mam_finetune", "lmam"}
    for arm in summary["arms"].values():
        assert set(arm["status"].values()) == {"done"} and all(v is not None for v in arm["per_seed"].values())
    assert set(summary["lambdas"]) == {"0", "1"}
    for layer in summary["lambdas"].values():
        values = list(layer["per_seed"].values())
        assert len(values) == 2 and all(0.0 < v < 1.0 for v in values)
        assert any(abs(v - 0.05) > 1e-4 for v in values)  # λ learned
        assert layer["std"] is not None and layer["range"] == pytest.approx(max(values) - min(values))
    recipe = yaml.safe_load((out / "recipes" / "lmam.yaml").read_text())
    assert recipe["lambda_lr_scale"] == 50.0 and recipe["lambda_init"] == 0.05
    text = (out / "lmam_protocol.md").read_text()
    assert "| lmam |" in text and "| layer | init | seed 0 | seed 1 | mean | std | range |" in text
    assert (out / "lambdas.csv").read_text().count("\n") == 1 + 2 * 2
