"""Stock s3prl: `run_downstream.py -f -u lmam_hubert_bert_tiny` trains λ (and the target), saves them without the
frozen source projections (a fingerprint stands in for them), `-m evaluate -e` reloads it; other sources are refused."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from upstream_merged.hub.mam import entry_recipe
from upstream_merged.mam.upstream import learnable_upstream
from upstream_merged.registry import allow_runner_checkpoints, entries
from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream, speech_commands_overrides

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import show_lambdas  # noqa: E402
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY, FrozenStateMismatch, decode_fingerprint  # noqa: E402

STEPS = 10
LAMBDA_INIT = 0.05  # recipes/tiny_lmam_hubert_bert.yaml


def test_finetuning_moves_lambda_and_evaluation_reloads_it(tmp_path, speech_commands_root, plugin_cache_env, capsys):
    expdir = tmp_path / "exp"
    overrides = (f"{speech_commands_overrides(speech_commands_root)},,config.runner.total_steps={STEPS},,"
                 f"config.runner.eval_step={STEPS},,config.runner.save_step={STEPS},,config.runner.eval_dataloaders=['test']")
    train = run_downstream(["-m", "train", "-u", "lmam_hubert_bert_tiny", "-f", "-d", "speech_commands",
                            "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"), "-p", str(expdir), "-o", overrides],
                           cwd=tmp_path, env=plugin_cache_env).check()
    checkpoint = expdir / f"states-{STEPS}.ckpt"
    assert checkpoint.is_file()
    trained_acc = train.metric("test acc")[-1]
    trained_predictions = (expdir / "test_predict.txt").read_text()

    assert show_lambdas.main([str(checkpoint), "--json"]) == 0
    lambdas = json.loads(capsys.readouterr().out)["banks"]["mam_lambda"]
    assert set(lambdas) == {"0", "1"}
    assert all(0.0 < value < 1.0 for value in lambdas.values())
    assert any(abs(value - LAMBDA_INIT) > 1e-6 for value in lambdas.values()), lambdas  # λ moved

    shutil.copy(expdir / "test_predict.txt", tmp_path / "trained_predict.txt")
    evaluate = run_downstream(["-m", "evaluate", "-e", str(checkpoint), "-t", "test"],
                              cwd=tmp_path, env=plugin_cache_env).check()
    assert evaluate.metric("test acc") == [trained_acc]
    assert (expdir / "test_predict.txt").read_text() == trained_predictions

    # What -e does to the upstream: rebuild the entry, then load the saved 'Upstream' state strictly.
    allow_runner_checkpoints()
    saved = torch.load(str(checkpoint), map_location="cpu", weights_only=True)["Upstream"]
    rebuilt = entries()["lmam_hubert_bert_tiny"]()
    assert rebuilt.lambdas == pytest.approx({0: LAMBDA_INIT, 1: LAMBDA_INIT})
    # trainable: all (the recipe's default) saves λ and the target, never the frozen source projections
    assert set(saved) == set(rebuilt.state_dict()) and FINGERPRINT_KEY in saved
    assert not any(key.endswith(".source") for key in saved)
    assert set(decode_fingerprint(saved[FINGERPRINT_KEY], "test")) == {"source"}
    rebuilt.load_state_dict(saved, strict=True)
    assert {str(k): v for k, v in rebuilt.lambdas.items()} == lambdas

    tampered = dict(saved)
    text = bytes(saved[FINGERPRINT_KEY].tolist()).decode()
    digest = json.loads(text)["parts"]["source"]["values"]
    tampered[FINGERPRINT_KEY] = torch.tensor(list(text.replace(digest, "0" * len(digest)).encode()), dtype=torch.uint8)
    with pytest.raises(FrozenStateMismatch, match="lmam_hubert_bert_tiny refuses .*model 'source' has the same tensor"):
        entries()["lmam_hubert_bert_tiny"]().load_state_dict(tampered)
    recipe = entry_recipe(None, None, "tiny_lmam_hubert_bert")
    other_source = learnable_upstream(recipe.model_copy(update={"sources": {**recipe.sources, "source": "tiny:bert:1"}}))
    with pytest.raises(FrozenStateMismatch, match="model 'source' .*rebuilt from source = tiny:bert:1"):
        other_source.load_state_dict(saved)
