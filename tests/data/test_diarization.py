"""upstream_merged/data/diarization.py writes Kaldi-style two-speaker recordings that s3prl's diarization reader loads."""
import importlib.util

import pytest
import soundfile as sf

from data_helpers import tree_digest
from upstream_merged.data import diarization as sd



def _kaldi(path):
    spec = importlib.util.find_spec("s3prl.downstream.diarization.dataset")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the reader only; the expert itself needs h5py
    return module.KaldiData(str(path))


def test_layout_labels_and_overlap(diarization_root):
    speakers = {}
    overlaps = 0
    for split, n in (("train", 8), ("dev", 2), ("test", 2)):
        data = _kaldi(diarization_root / split)
        assert len(data.wavs) == n and set(data.reco2dur) == set(data.wavs) == set(data.segments)
        for rec, path in data.wavs.items():
            audio, rate = sf.read(path)
            assert rate == 16000 and audio.ndim == 1 and len(audio) / rate == pytest.approx(data.reco2dur[rec], abs=1e-3)
            segments = sorted(data.segments[rec], key=lambda seg: seg["st"])
            assert {data.utt2spk[seg["utt"]] for seg in segments} == {data.utt2spk[segments[0]["utt"]], data.utt2spk[segments[1]["utt"]]}
            assert all(0 <= seg["st"] < seg["et"] <= data.reco2dur[rec] for seg in segments)
            overlaps += sum(b["st"] < a["et"] for a, b in zip(segments, segments[1:]))
        speakers[split] = set(data.spk2utt)
        assert (diarization_root / split / "rttm").read_text().count("SPEAKER ") == 4 * n
    assert overlaps > 0  # some turns overlap, as in real diarization data
    assert not (speakers["train"] & speakers["dev"] or speakers["train"] & speakers["test"] or speakers["dev"] & speakers["test"])


def test_two_runs_give_identical_bytes(tmp_path):
    for name in ("a", "b"):
        sd.build(tmp_path / name, train=1, dev=1, test=1, turns=2)
    for name in ("a", "b"):  # wav.scp holds absolute paths by design; compare it relative to the root
        for split in sd.SPLITS:
            scp = tmp_path / name / split / "wav.scp"
            scp.write_text(scp.read_text().replace(str(tmp_path / name), "ROOT"))
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
