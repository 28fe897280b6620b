"""The control rows through stock s3prl run_downstream.py: a single small encoder's interface trains under -f
(backbone frozen, kept out of the checkpoint), evaluate rebuilds it, export finds the entry; and the stock
hand-feature upstreams (mfcc, fbank) run offline with our downstream configs."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from upstream_merged.fusion.model import BACKBONE_PREFIX
from upstream_merged.registry import allow_runner_checkpoints, entries
from upstream_merged.testing.s3prl_run import CONFIG_DIR, REPO_ROOT, run_downstream, speech_commands_overrides
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY

STEPS = "config.runner.total_steps=4,,config.runner.eval_step=4,,config.runner.save_step=4"


def _train(entry: str, root, expdir, env, finetune: bool):
    return run_downstream(
        ["-m", "train", "-u", entry, "-d", "speech_commands", *(["-f"] if finetune else []), "-p", str(expdir),
         "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"), "-o", f"{speech_commands_overrides(root)},,{STEPS}"],
        env=env,
    ).check()


def test_single_encoder_interface_trains_under_f_and_evaluates(speech_commands_root, tmp_path, plugin_cache_env):
    entry = "hconv_mert_small"
    run = _train(entry, speech_commands_root, tmp_path / "exp", plugin_cache_env, finetune=True)
    (test_acc,) = run.metric("test acc")
    checkpoint = tmp_path / "exp" / "states-4.ckpt"

    allow_runner_checkpoints()
    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["Upstream"]
    fresh = entries()[entry]()
    interface = set(fresh.interface_state_dict())
    assert interface and set(trained) == interface | {FINGERPRINT_KEY}
    assert not any(key.startswith(BACKBONE_PREFIX) for key in trained)  # the frozen encoder is not saved
    assert torch.equal(trained[FINGERPRINT_KEY], fresh.state_dict()[FINGERPRINT_KEY])  # and did not change
    assert any(not torch.equal(trained[k], fresh.state_dict()[k]) for k in interface), "-f trained nothing"

    evaluation = run_downstream(["-m", "evaluate", "-e", str(checkpoint), "-t", "test"], env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [test_acc]

    # a fresh process (only the exporter imported) still knows the entry and its packaged recipe
    out = tmp_path / "fused"
    exported = subprocess.run([sys.executable, "-m", "upstream_merged.fusion.export", str(checkpoint), str(out)],
                              cwd=str(REPO_ROOT), env={**os.environ, **plugin_cache_env},
                              capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr[-2000:]
    served = entries()["fusion_custom"](ckpt=str(out)).state_dict()
    torch.testing.assert_close({k: served[k] for k in trained}, trained, rtol=0, atol=0)


@pytest.mark.parametrize("upstream", ["mfcc", "fbank"])
def test_stock_hand_feature_upstreams_run_offline(upstream, speech_commands_root, tmp_path, plugin_cache_env):
    run = _train(upstream, speech_commands_root, tmp_path / "exp", plugin_cache_env, finetune=False)
    assert "downsample rate is 160" in run.output  # 10 ms frames, as s3prl's baseline configs say
    (test_acc,) = run.metric("test acc")
    assert 0.0 <= test_acc <= 1.0
