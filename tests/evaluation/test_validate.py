"""The shortened validation: hubert_tiny on the small KS set, stock run_downstream.py and the cached probe."""
import pytest

from upstream_merged.evaluation.validate import dev_best, read_dev_curve, read_predictions, validate


def test_cached_probe_scores_what_the_stock_run_scores(ks_task, feature_root, tmp_path, plugin_cache_env, monkeypatch):
    for key, value in plugin_cache_env.items():  # the stock subprocess shares the session's plugin cache
        monkeypatch.setenv(key, value)
    result = validate("hubert_tiny", ks_task, steps=100, eval_step=50, seed=0, work=tmp_path, cached_seeds=(1,),
                      cache=feature_root)
    stock, cached = result.stock, result.cached
    assert stock["total"] == cached["total"] == 24  # the same 24 test clips, paired by id
    assert result.agree, (f"stock {stock['value']:.3f} outside the cached interval "
                          f"[{cached['low']:.3f}, {cached['high']:.3f}]")
    assert result.paired["clips"] == 24
    assert result.paired["low"] <= result.paired["difference"] <= result.paired["high"]
    discordant = result.paired["mcnemar"]["only_a"] + result.paired["mcnemar"]["only_b"]
    assert discordant <= 2, "same seed, same random stream: the two probes should agree clip by clip"
    assert cached["best_step"] in (50, 100) and cached["pool_first"]
    assert set(result.cached_seeds) == {1}

    again = validate("hubert_tiny", ks_task, steps=100, eval_step=50, seed=0, work=tmp_path, cache=feature_root)
    assert again.stock["value"] == stock["value"]  # the finished stock run is reused, not retrained
    drop = lambda d: {k: v for k, v in d.items() if k != "seconds"}  # noqa: E731
    assert drop(again.cached) == drop(cached)  # and the cached probe is deterministic


def test_stock_prediction_files_are_paired_by_clip_id(tmp_path):
    (tmp_path / "test_predict.txt").write_text("yes-a.wav yes\nno-b.wav up\n_silence_-c.wav _silence_\n")
    (tmp_path / "test_truth.txt").write_text("no-b.wav no\nyes-a.wav yes\n_silence_-c.wav _silence_\n")
    assert read_predictions(tmp_path) == {"yes-a.wav": True, "no-b.wav": False, "_silence_-c.wav": True}
    (tmp_path / "test_truth.txt").write_text("yes-a.wav yes\n")
    with pytest.raises(ValueError, match="different clips"):
        read_predictions(tmp_path)
    with pytest.raises(FileNotFoundError, match="dev_predict.txt"):
        read_predictions(tmp_path, "dev")


def test_dev_curve_read_from_the_stock_log(tmp_path):
    assert read_dev_curve(tmp_path) == []
    (tmp_path / "log.log").write_text(  # stock lines: speech_commands / voxceleb1, nsynth, then a resumed repeat
        "dev at step 100: 0.2372093023255814\nNew best on dev at step 100: 0.2372093023255814\n"
        "dev acc at step 200: 0.11789772727272728\n"
        "dev at step 100: 0.25\n")
    assert read_dev_curve(tmp_path) == [(100, 0.25), (200, 0.11789772727272728)]
    assert dev_best([(100, 0.5), (200, 0.5), (300, 0.4)]) == (100, 0.5)  # the first best, as the stock run keeps it
    assert dev_best([]) is None
