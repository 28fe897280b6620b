"""Stock s3prl run_downstream.py -f trains the fusion interface only, and evaluate reproduces the score."""
import pytest
import torch

from upstream_merged.fusion.export import export
from upstream_merged.fusion.model import BACKBONE_PREFIX
from upstream_merged.registry import allow_runner_checkpoints, entries
from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream, speech_commands_overrides

ENTRY = "fusion_hubert_wavlm_hconv_tiny"
STEPS = "config.runner.total_steps=10,,config.runner.eval_step=10,,config.runner.save_step=10"


def test_finetune_flag_trains_interface_not_backbones(speech_commands_root, tmp_path, plugin_cache_env):
    expdir = tmp_path / "exp"
    run = run_downstream(
        ["-m", "train", "-u", ENTRY, "-d", "speech_commands", "-f", "-p", str(expdir),
         "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"),
         "-o", f"{speech_commands_overrides(speech_commands_root)},,{STEPS}"],
        env=plugin_cache_env,
    ).check()
    (test_acc,) = run.metric("test acc")

    allow_runner_checkpoints()
    trained = torch.load(expdir / "states-10.ckpt", map_location="cpu", weights_only=True)["Upstream"]
    fresh = entries()[ENTRY]().state_dict()
    assert trained.keys() == fresh.keys()
    backbone = [k for k in fresh if k.startswith(BACKBONE_PREFIX)]
    interface = [k for k in fresh if not k.startswith(BACKBONE_PREFIX)]
    assert backbone and interface
    for key in backbone:
        assert torch.equal(trained[key], fresh[key]), f"backbone tensor {key} changed under -f"
    changed = [k for k in interface if not torch.equal(trained[k], fresh[k])]
    assert changed, "no interface tensor changed under -f"

    exported = entries()["fusion_custom"](ckpt=str(export(expdir / "states-10.ckpt", tmp_path / "fused")))
    torch.testing.assert_close(exported.state_dict(), trained, rtol=0, atol=0)

    evaluation = run_downstream(["-m", "evaluate", "-e", str(expdir / "states-10.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [pytest.approx(test_acc, abs=1e-9)]
