"""tools/mam_small_evidence.py runs its four stages (data, CTC fine-tuning, MLM, zero-shot sweep) at toy size."""
import csv
import json
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "mam_small_evidence.py"
sys.path.insert(0, str(TOOL.parent))
import mam_small_evidence  # noqa: E402


def test_pipeline_at_toy_size(tmp_path):
    assert mam_small_evidence.main([str(tmp_path), "--train-utts", "4", "--train-voices", "1", "--per-voice", "2",
                                    "--eval-utts", "2", "--vctk-eval-utts", "1", "--ctc-steps", "2",
                                    "--mlm-steps", "2", "--subsets", "lower", "--components", "qkv",
                                    "--lambdas", "0.05+0.1"]) == 0
    ctc_run = json.loads((tmp_path / "hubert_small_ctc" / "training.json").read_text())
    assert ctc_run["steps"] == 2 and ctc_run["train_voices"] == 2 and len(ctc_run["loss_per_utterance_curve"]) == 1
    mlm_run = json.loads((tmp_path / "bert_small_mlm" / "training.json").read_text())
    assert mlm_run["tokens"] > 100_000 and mlm_run["loss_curve"][-1][0] == 2
    assert set(json.loads((tmp_path / "run.json").read_text())["stage_seconds"]) == {"data", "ctc", "mlm", "eval"}
    with open(tmp_path / "zero_shot" / "zero_shot.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(r["source"]).name for r in rows} == {"(unmerged)", "bert_small_mlm", "bert_small_random"}
    assert {r["dataset"] for r in rows} == {"ljspeech_synth", "vctk_synth_mic1"}
    assert {r["layers"] for r in rows} == {"-", "lower"} and len(rows) == 2 + 2 * 2 * 2
    bert = json.loads((tmp_path / "bert_small_mlm" / "config.json").read_text())
    hubert = json.loads((tmp_path / "hubert_small_ctc" / "config.json").read_text())
    assert all(bert[k] == hubert[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads"))


def test_schedule_warms_up_then_decays_to_zero():
    import torch

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = mam_small_evidence.linear_schedule(optimizer, steps=20)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == 0.5 and rates[1] == 1.0 and rates[-1] < rates[10] < 1.0
    assert optimizer.param_groups[0]["lr"] == 0.0


def test_bad_lambda_is_refused(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        mam_small_evidence.main([str(tmp_path), "--lambdas", "0.05+1.5"])
    assert "each λ must be in (0, 1]" in capsys.readouterr().err


def test_unknown_eval_set_is_refused(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="among \\['lj', 'vctk'\\]"):
        mam_small_evidence.stage_eval(tmp_path, tmp_path, [tmp_path], ["all"], ["qkv"], [0.05], ["librispeech"])
