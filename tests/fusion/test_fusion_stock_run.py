"""Stock s3prl run_downstream.py -f trains the fusion interface only, saves it without the backbones
(a fingerprint stands in for them), evaluate reproduces the score, and a different backbone is refused."""
import argparse

import pytest
import torch
import yaml

from upstream_merged.fusion.export import export
from upstream_merged.fusion.model import BACKBONE_PREFIX
from upstream_merged.registry import allow_runner_checkpoints, entries
from upstream_merged.testing.s3prl_run import CONFIG_DIR, REPO_ROOT, run_downstream, speech_commands_overrides
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY, FrozenStateMismatch

ENTRY = "fusion_hubert_wavlm_hconv_tiny"
RECIPE = REPO_ROOT / "upstream_merged" / "recipes" / "tiny_fusion_hubert_wavlm_hconv.yaml"
STEPS = "config.runner.total_steps=10,,config.runner.eval_step=10,,config.runner.save_step=10"


def _with_other_wavlm(checkpoint, tmp_path):
    """The same checkpoint, but its saved run arguments (-g) now build the entry with another WavLM."""
    recipe = yaml.safe_load(RECIPE.read_text())
    recipe["sources"]["wavlm"] = "tiny:wavlm:1"
    other_recipe = tmp_path / "other_wavlm.yaml"
    other_recipe.write_text(yaml.safe_dump(recipe))
    states = torch.load(checkpoint, map_location="cpu", weights_only=True)
    states["Args"] = argparse.Namespace(**{**vars(states["Args"]), "upstream_model_config": str(other_recipe)})
    tampered = tmp_path / "other-wavlm.ckpt"
    torch.save(states, tampered)
    return tampered


def test_finetune_flag_saves_interface_and_backbone_fingerprint_only(speech_commands_root, tmp_path, plugin_cache_env):
    expdir = tmp_path / "exp"
    run = run_downstream(
        ["-m", "train", "-u", ENTRY, "-d", "speech_commands", "-f", "-p", str(expdir),
         "-c", str(CONFIG_DIR / "speech_commands_cpu_small.yaml"),
         "-o", f"{speech_commands_overrides(speech_commands_root)},,{STEPS}"],
        env=plugin_cache_env,
    ).check()
    (test_acc,) = run.metric("test acc")
    checkpoint = expdir / "states-10.ckpt"

    allow_runner_checkpoints()
    trained = torch.load(checkpoint, map_location="cpu", weights_only=True)["Upstream"]
    fresh_model = entries()[ENTRY]()
    fresh = fresh_model.state_dict()
    interface = set(fresh_model.interface_state_dict())
    assert interface and set(trained) == interface | {FINGERPRINT_KEY} == set(fresh)
    assert not any(key.startswith(BACKBONE_PREFIX) for key in trained)  # the backbones are not in the checkpoint
    assert sum(p.numel() for p in fresh_model.backbones.parameters()) > 10 * sum(t.numel() for t in trained.values())
    assert torch.equal(trained[FINGERPRINT_KEY], fresh[FINGERPRINT_KEY])  # rebuilt backbones == trained-on ones
    assert any(not torch.equal(trained[k], fresh[k]) for k in interface), "no interface tensor changed under -f"

    exported = entries()["fusion_custom"](ckpt=str(export(checkpoint, tmp_path / "fused")))
    torch.testing.assert_close(exported.state_dict(), trained, rtol=0, atol=0)

    # -m evaluate -e rebuilds the backbones from the entry, checks the fingerprint, loads the interface
    evaluation = run_downstream(["-m", "evaluate", "-e", str(checkpoint), "-t", "test"], env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [test_acc]

    # the same checkpoint whose saved -g now builds another WavLM: refused by name, by the runner and by export
    tampered = _with_other_wavlm(checkpoint, tmp_path)
    refused = run_downstream(["-m", "evaluate", "-e", str(tampered), "-t", "test"], env=plugin_cache_env)
    assert refused.returncode != 0
    assert "FrozenStateMismatch" in refused.output and "backbone 'wavlm'" in refused.output, refused.output[-3000:]
    assert f"{ENTRY} refuses" in refused.output and "backbone 'hubert'" not in refused.output
    with pytest.raises(FrozenStateMismatch, match="backbone 'wavlm' has the same tensor names and shapes but different"):
        export(tampered, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
