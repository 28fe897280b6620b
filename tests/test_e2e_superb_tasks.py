"""Stock s3prl run_downstream.py trains and evaluates hubert_tiny on the synthetic IC, SID, ER, PR, SF, SD and QbE sets."""
import importlib
import re
import sys
from pathlib import Path

import pytest

from upstream_merged.testing.s3prl_run import CONFIG_DIR, REPO_ROOT, run_downstream

STEPS = 40  # the CPU-small configs: eval (dev + test) at steps 20 and 40

# task -> (data fixture, tool module, prediction files the expert writes for the test split, test items)
TASKS = {
    "fluent_commands": ("fluent_commands_root", "make_fluent_commands", ["test_predict.csv", "test_truth.csv"], 17),
    "voxceleb1": ("voxceleb1_root", "make_voxceleb1", ["test_predict.txt", "test_truth.txt"], 16),
    "emotion": ("iemocap_root", "make_iemocap", ["test_fold1_predict.txt", "test_fold1_truth.txt"], 18),
}


def _tool(name):
    if str(REPO_ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "tools"))
    return importlib.import_module(name)


def _logged(expdir: Path, split: str) -> list:
    """The '<split> at step N: value' lines the expert appends to <expdir>/log.log."""
    text = (expdir / "log.log").read_text()
    return [(int(step), float(value)) for step, value in re.findall(rf"^{split} at step (\d+): ([-0-9.eE]+)$", text, re.M)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_train_then_evaluate(task, request, tmp_path, plugin_cache_env):
    fixture, tool, predictions, n_test = TASKS[task]
    root = request.getfixturevalue(fixture)
    expdir = tmp_path / "exp"
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", task, "-c", str(CONFIG_DIR / f"{task}_cpu_small.yaml"),
                          "-p", str(expdir), "-o", _tool(tool).overrides(root)], env=plugin_cache_env).check()
    dev, test = run.metric("dev acc"), run.metric("test acc")
    assert len(dev) == 2 and len(test) == 2 and all(0.0 <= acc <= 1.0 for acc in dev + test)
    assert _logged(expdir, "test") == [(20, pytest.approx(test[0])), (STEPS, pytest.approx(test[1]))]
    assert (expdir / "dev-best.ckpt").is_file() and (expdir / f"states-{STEPS}.ckpt").is_file()
    for name in predictions:
        assert len((expdir / name).read_text().splitlines()) == n_test

    best = dev.index(max(dev))  # the runner keeps the first strictly-better dev score
    evaluation = run_downstream(["-m", "evaluate", "-e", str(expdir / "dev-best.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert evaluation.metric("test acc") == [pytest.approx(test[best], abs=1e-6)]


def test_voxceleb1_file_lists_stay_out_of_site_packages(voxceleb1_root, tmp_path, plugin_cache_env, files_under):
    import s3prl.downstream.voxceleb1 as stock

    stock_dir = Path(stock.__file__).parent
    before = files_under(stock_dir)
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", "voxceleb1",
                          "-c", str(CONFIG_DIR / "voxceleb1_cpu_small.yaml"), "-p", str(tmp_path / "exp"),
                          "-o", _tool("make_voxceleb1").overrides(voxceleb1_root) + ",,config.runner.total_steps=2"],
                         env=plugin_cache_env).check()
    assert files_under(stock_dir) == before
    lists = sorted(Path(plugin_cache_env["UPSTREAM_MERGED_CACHE"]).glob("s3prl_file_lists/voxceleb1/*/*.pkl"))
    assert {p.name for p in lists} >= {"train.pkl", "dev.pkl", "test.pkl"}
    assert "there are 32 files found" in run.output  # 8 speakers x 2 train videos x 2 clips


def test_diarization_train_then_evaluate(diarization_root, tmp_path, plugin_cache_env):
    pytest.importorskip("h5py", reason="s3prl's diarization expert imports h5py (not in tools/requirements.txt)")
    expdir = tmp_path / "exp"
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", "diarization",
                          "-c", str(CONFIG_DIR / "diarization_cpu_small.yaml"), "-p", str(expdir),
                          "-o", _tool("make_diarization").overrides(diarization_root)], env=plugin_cache_env).check()
    dev = re.findall(r"mode dev acc ([-0-9.eE]+) der ([-0-9.eE]+)", run.output)
    assert len(dev) == 2 and all(0.0 <= float(acc) <= 1.0 and float(der) >= 0.0 for acc, der in dev)
    assert (expdir / "best-states-dev.ckpt").is_file() and (expdir / "frame_shift").read_text().strip() == "320"

    evaluation = run_downstream(["-m", "evaluate", "-e", str(expdir / "best-states-dev.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    test = re.findall(r"mode test acc ([-0-9.eE]+) der ([-0-9.eE]+)", evaluation.output)
    assert len(test) == 1 and 0.0 <= float(test[0][0]) <= 1.0
    assert sorted(p.name for p in (expdir / "scoring" / "predictions").iterdir()) == ["test_000.h5", "test_001.h5"]


def test_quesst14_dtw_evaluate(quesst14_root, tmp_path, plugin_cache_env):
    pytest.importorskip("dtw", reason="s3prl's quesst14_dtw expert needs dtw-python (not in tools/requirements.txt)")
    pytest.importorskip("lxml", reason="s3prl's quesst14_dtw expert needs lxml (not in tools/requirements.txt)")
    from lxml import etree

    expdir = tmp_path / "exp"
    run_downstream(["-m", "evaluate", "-t", "dev", "-u", "hubert_tiny", "-d", "quesst14_dtw",
                    "-c", str(CONFIG_DIR / "quesst14_dtw_cpu_small.yaml"), "-p", str(expdir),
                    "-o", _tool("make_quesst14").overrides(quesst14_root)], env=plugin_cache_env).check()
    termlists = etree.parse(str(expdir / "benchmark.stdlist.xml")).getroot().findall("detected_termlist")
    assert sorted(t.get("termid") for t in termlists) == [f"quesst14_dev_{n:04d}" for n in range(4)]
    for termlist in termlists:
        terms = termlist.findall("term")
        assert len(terms) == 16 and {t.get("decision") for t in terms} <= {"YES", "NO"}
        assert all(abs(float(t.get("score"))) < 10 for t in terms)  # per-query z-scores


def test_phoneme_recognition_train_then_evaluate(libriphone_root, tmp_path, plugin_cache_env):
    expdir = tmp_path / "exp"
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", "ctc",
                          "-c", str(CONFIG_DIR / "ctc_libriphone_cpu_small.yaml"), "-p", str(expdir),
                          "-o", _tool("make_libriphone").overrides(libriphone_root)], env=plugin_cache_env).check()
    dev = run.metric("dev per")
    assert len(dev) == 2 and all(0.0 <= per <= 1.5 for per in dev)
    assert (expdir / "dev-best.ckpt").is_file() and len((expdir / "dev-hyp.ark").read_text().splitlines()) == 8

    evaluation = run_downstream(["-m", "evaluate", "-e", str(expdir / "dev-best.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert len(evaluation.metric("test per")) == 1
    refs = (expdir / "test-ref.ark").read_text().splitlines()
    assert len(refs) == 8 and all(len(line.split()) > 3 for line in refs)  # utterance id + phones


def test_slot_filling_train_then_evaluate(snips_root, tmp_path, plugin_cache_env):
    expdir = tmp_path / "exp"
    run = run_downstream(["-m", "train", "-u", "hubert_tiny", "-d", "ctc",
                          "-c", str(CONFIG_DIR / "ctc_snips_cpu_small.yaml"), "-p", str(expdir),
                          "-o", _tool("make_snips").overrides(snips_root)], env=plugin_cache_env).check()
    f1, cer = run.metric("dev slot_type_f1"), run.metric("dev slot_value_cer")
    assert len(f1) == 2 and len(cer) == 2 and all(0.0 <= v <= 1.0 for v in f1)
    refs = (expdir / "dev-ref.ark").read_text().splitlines()
    assert len(refs) == 8 and all("B-" in line and "E-" in line for line in refs)  # slot-tagged references

    evaluation = run_downstream(["-m", "evaluate", "-e", str(expdir / f"states-{STEPS}.ckpt"), "-t", "test"],
                                env=plugin_cache_env).check()
    assert len(evaluation.metric("test slot_type_f1")) == 1 and len(evaluation.metric("test slot_value_cer")) == 1
    assert len((expdir / "test-hyp.ark").read_text().splitlines()) == 8
