"""upstream_merged/data/quesst14.py writes QUESST14's scoring lists and audio the way s3prl's quesst14_dtw reads them."""
import csv
import importlib.util

import soundfile as sf

from data_helpers import tree_digest
from upstream_merged.data import quesst14 as qbe



def _audio_paths(root, lst):
    spec = importlib.util.find_spec("s3prl.downstream.quesst14_dtw.dataset")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the reader only; the expert itself needs dtw-python and lxml
    return module.english_audio_paths(root, lst)


def test_lists_audio_and_truth(quesst14_root):
    root = quesst14_root / qbe.ROOT
    docs = _audio_paths(root, "language_key_utterances.lst")
    dev = _audio_paths(root, "language_key_dev.lst")
    evaluation = _audio_paths(root, "language_key_eval.lst")
    assert (len(docs), len(dev), len(evaluation)) == (16, 4, 4)
    for path in docs + dev + evaluation:
        data, rate = sf.read(path)
        assert rate == 16000 and data.ndim == 1 and len(data) > 0.2 * rate  # queries need >= 5 frames
    with open(root / "scoring" / "synthetic_truth.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 8 * 16
    per_query = {}
    for row in rows:
        per_query[row["query"]] = per_query.get(row["query"], 0) + int(row["match"])
    assert sorted(per_query) == sorted(p.stem for p in dev + evaluation) and all(n == 1 for n in per_query.values())


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        qbe.build(tmp_path / name, documents=2)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
