"""upstream_merged/data/iemocap.py writes IEMOCAP's session layout and label files; s3prl's preprocessing reads them."""
import json
import re

from data_helpers import tree_digest
from upstream_merged.data import iemocap



def test_sessions_labels_and_meta_data(iemocap_root):
    for session in range(1, 6):
        label_file = iemocap_root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"Ses{session:02d}F_impro01.txt"
        labels = re.findall(r"^\[[0-9.]+ - [0-9.]+\]\t(\S+)\t(\w+)\t\[", label_file.read_text(), re.M)
        assert sorted({label for _, label in labels}) == ["ang", "exc", "fru", "hap", "neu", "sad"]
        for name, _ in labels:
            assert (iemocap_root / f"Session{session}" / "sentences" / "wav" / name.rsplit("_", 1)[0] / f"{name}.wav").is_file()
        test = json.loads((iemocap_root / "meta_data" / f"Session{session}" / "test_meta_data.json").read_text())
        train = json.loads((iemocap_root / "meta_data" / f"Session{session}" / "train_meta_data.json").read_text())
        assert test["labels"] == {"neu": 0, "hap": 1, "ang": 2, "sad": 3}
        # per speaker: 2 clips x 4 classes + 'exc' (-> hap); 'fru' is dropped by s3prl's preprocessing
        assert len(test["meta_data"]) == 18 and len(train["meta_data"]) == 4 * 18
        assert {m["path"].split("/")[0] for m in test["meta_data"]} == {f"Session{session}"}
        assert sum(m["label"] == "hap" for m in test["meta_data"]) == 6


def test_classes_differ_in_loudness(iemocap_root):
    import soundfile as sf

    meta = json.loads((iemocap_root / "meta_data" / "Session1" / "test_meta_data.json").read_text())["meta_data"]
    rms = {}
    for item in meta:
        data, rate = sf.read(iemocap_root / item["path"])
        assert rate == 16000
        rms.setdefault(item["label"], []).append(float((data ** 2).mean() ** 0.5))
    mean = {label: sum(v) / len(v) for label, v in rms.items()}
    assert mean["ang"] > mean["neu"] > mean["sad"]


def test_stock_dataset_reads_the_meta_data(iemocap_root):
    from s3prl.downstream.emotion.dataset import IEMOCAPDataset

    dataset = IEMOCAPDataset(str(iemocap_root), str(iemocap_root / "meta_data" / "Session2" / "test_meta_data.json"), False)
    wav, label, name = dataset[0]
    assert len(dataset) == 18 and wav.ndim == 1 and label in range(4) and name.startswith("Ses02F_impro01_")


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        iemocap.build(tmp_path / name, utterances=1)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
