"""Stock s3prl run_downstream.py trains and evaluates the plugin's music and audio-event tasks (-d <task>)."""
import pytest

from upstream_merged.testing.s3prl_run import CONFIG_DIR, run_downstream

# task -> (session fixture with the synthetic set, datarc key the -o sets, number of test clips in it)
TASKS = {
    "nsynth_pitch": ("nsynth_root", "nsynth_root", 36),
    "nsynth_instrument": ("nsynth_root", "nsynth_root", 36),
    "gtzan_genre": ("gtzan_root", "gtzan_root", 20),
    "esc50": ("esc50_root", "esc50_root", 12),
}


@pytest.mark.parametrize("task", list(TASKS))
def test_train_then_evaluate(task, request, tmp_path, plugin_cache_env):
    fixture, key, n_test = TASKS[task]
    root = request.getfixturevalue(fixture)
    run = run_downstream(
        ["-m", "train", "-u", "hubert_tiny", "-d", task, "-c", str(CONFIG_DIR / f"{task}_cpu_small.yaml"),
         "-p", str(tmp_path / "exp"), "-o", f"config.downstream_expert.datarc.{key}={root}"],
        env=plugin_cache_env,
    ).check()
    dev, test = run.metric("dev acc"), run.metric("test acc")
    assert len(dev) == 2 and len(test) == 2  # evaluations at steps 20 and 40
    assert all(0.0 <= acc <= 1.0 for acc in dev + test)
    predictions = (run.expdir / "test_predict.txt").read_text().splitlines()
    assert len(predictions) == n_test

    best = dev.index(max(dev))  # the first strictly better dev score is kept
    evaluation = run_downstream(["-m", "evaluate", "-e", str(run.expdir / "dev-best.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [pytest.approx(test[best], abs=1e-9)]

