"""tools/mam_small_evidence.py runs its four stages (data, CTC fine-tuning, MLM, zero-shot sweep) at toy size."""
import csv
import json
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mam_small_evidence.py"
sys.path.insert(0, str(TOOL.parent))
import mam_small_evidence  # noqa: E402


def test_pipeline_at_toy_size(tmp_path):
    assert mam_small_evidence.main([str(tmp_path), "--train-utts", "4", "--eval-utts", "2", "--ctc-steps", "2",
                                    "--mlm-steps", "2", "--subsets", "lower", "--components", "qkv"]) == 0
    assert json.loads((tmp_path / "hubert_small_ctc" / "training.json").read_text())["steps"] == 2
    assert json.loads((tmp_path / "bert_small_mlm" / "training.json").read_text())["tokens"] > 1000
    with open(tmp_path / "zero_shot" / "zero_shot.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(r["source"]).name for r in rows} == {"(unmerged)", "bert_small_mlm", "bert_small_random"}
    assert {r["dataset"] for r in rows} == {"ljspeech_synth", "vctk_synth_mic1"}
    assert {r["layers"] for r in rows} == {"-", "lower"} and len(rows) == 2 + 2 * 2 * 5
    bert = json.loads((tmp_path / "bert_small_mlm" / "config.json").read_text())
    hubert = json.loads((tmp_path / "hubert_small_ctc" / "config.json").read_text())
    assert all(bert[k] == hubert[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads"))
