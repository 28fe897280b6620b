"""The music/event configs: every data path is a placeholder whose error names the -o key that sets it."""
import importlib

import pytest
import yaml

from upstream_merged.testing.s3prl_run import CONFIG_DIR

DATA_KEY = {"nsynth_pitch": "nsynth_root", "nsynth_instrument": "nsynth_root", "gtzan_genre": "gtzan_root",
            "esc50": "esc50_root"}


@pytest.mark.parametrize("variant", ["", "_cpu_small"])
@pytest.mark.parametrize("task", list(DATA_KEY))
def test_placeholder_fails_naming_the_override(task, variant, tmp_path):
    config = yaml.safe_load((CONFIG_DIR / f"{task}{variant}.yaml").read_text())
    assert {"runner", "optimizer", "downstream_expert"} <= set(config)
    assert config["runner"]["eval_dataloaders"] == ["dev", "test"]
    expert = importlib.import_module(f"upstream_merged.downstream.{task}.expert")
    with pytest.raises(ValueError, match=f"-o config.downstream_expert.datarc.{DATA_KEY[task]}="):
        expert.DownstreamExpert(upstream_dim=8, upstream_rate=320, expdir=str(tmp_path), **config)
