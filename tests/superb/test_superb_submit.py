"""Leaderboard packaging from the shared sweep's runs: exact predict/<task>_public layout; refusals."""
import shutil
import zipfile

import pytest

from upstream_merged.__main__ import main
from upstream_merged.superb.submit import SubmissionError, expdirs_from_sweep, package

BAD_ENTRY = "nope_entry"  # the failing entry of the shared sweep (conftest.py)


def test_package_has_the_leaderboard_layout(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "submission"
    assert main(["submit", str(out), "--sweep", str(tiny_sweep.dir), "--entry", "merged"]) == 0
    assert "predict.zip" in capsys.readouterr().out
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["predict.zip", "predict/ic_public/predict.csv", "predict/ks_public/predict.txt"]
    with zipfile.ZipFile(out / "predict.zip") as zf:
        assert sorted(n for n in zf.namelist() if not n.endswith("/")) == [
            "predict/ic_public/predict.csv", "predict/ks_public/predict.txt"]
        runs = tiny_sweep.dir / "runs" / "merged"
        assert zf.read("predict/ks_public/predict.txt") == (runs / "ks" / "seed0" / "exp" / "test_predict.txt").read_bytes()
        assert zf.read("predict/ic_public/predict.csv") == (runs / "ic" / "seed0" / "exp" / "test_predict.csv").read_bytes()
    # an existing submission is replaced only with --force
    assert main(["submit", str(out), "--sweep", str(tiny_sweep.dir), "--entry", "merged"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["submit", str(out), "--sweep", str(tiny_sweep.dir), "--entry", "hubert_tiny", "--force"]) == 0


def test_unfinished_run_is_refused_naming_the_task(tiny_sweep, tmp_path):
    with pytest.raises(SubmissionError, match=rf"task ks \(ks\): run {BAD_ENTRY}/ks/seed0 is not finished .*DONE.json"):
        expdirs_from_sweep(tiny_sweep.dir, BAD_ENTRY)


def test_missing_prediction_file_is_refused_and_nothing_is_written(tiny_sweep, tmp_path, capsys):
    expdirs = expdirs_from_sweep(tiny_sweep.dir, "hubert_tiny")
    broken = tmp_path / "ic_exp"
    shutil.copytree(expdirs["ic"], broken, ignore=shutil.ignore_patterns("*.ckpt", "events.*"))
    (broken / "test_predict.csv").unlink()
    out = tmp_path / "submission"
    with pytest.raises(SubmissionError, match=rf"task ic: {broken / 'test_predict.csv'} not found"):
        package({"ks": expdirs["ks"], "ic": broken}, out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["ic_exp"]
    assert main(["submit", str(out), "--task", f"sid={broken}"]) == 2
    assert f"task sid: {broken / 'test_predict.txt'} not found" in capsys.readouterr().err
    with pytest.raises(SubmissionError, match="unknown leaderboard task"):
        package({"kws": expdirs["ks"]}, out)
    assert not out.exists()
