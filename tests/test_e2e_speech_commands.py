"""Stock s3prl run_downstream.py trains and evaluates with plugin entries on the synthetic set."""
import pytest

from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream, speech_commands_overrides

SMALL = str(CONFIG_DIR / "speech_commands_cpu_small.yaml")


def _train(entry, root, expdir, env, *extra):
    return run_downstream(
        ["-m", "train", "-u", entry, "-d", "speech_commands", "-c", SMALL, "-p", str(expdir),
         "-o", speech_commands_overrides(root), *extra],
        env=env,
    ).check()


@pytest.mark.parametrize("entry", ["hubert_tiny", "mert_v1_tiny"])
def test_train_then_evaluate_reproduces_the_best_checkpoint(entry, speech_commands_root, tmp_path, plugin_cache_env):
    run = _train(entry, speech_commands_root, tmp_path / "exp", plugin_cache_env)
    dev, test = run.metric("dev acc"), run.metric("test acc")
    assert len(dev) == 2 and len(test) == 2  # eval at steps 20 and 40
    assert all(0.0 <= acc <= 1.0 for acc in dev + test)
    assert (run.expdir / "dev-best.ckpt").is_file()

    best = dev.index(max(dev))  # s3prl keeps the first strictly-better dev score
    evaluation = run_downstream(["-m", "evaluate", "-e", str(run.expdir / "dev-best.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [pytest.approx(test[best], abs=1e-9)]
