"""tools/evidence_table.py, shortened: a few rows on tiny KS / NSynth sets, claims table, resumable cells."""
from __future__ import annotations

import json

import pytest
from superb_tool_helpers import tool

from upstream_merged.evaluation.claims import CONTRADICTED, NOT_RUN, SUPPORTED, UNDECIDED


def test_shortened_run_writes_the_claims_table_and_reuses_finished_cells(evalsets, tmp_path):
    evidence = tool("evidence_table")
    out, work = tmp_path / "out", tmp_path / "work"
    argv = ["--evalsets", str(evalsets), "--tasks", "ks", "pitch", "--rows", "mfcc", "--seeds", "0", "1",
            "--probe-max-steps", "20", "--probe-min-steps", "10", "--jobs", "1", "--resamples", "200",
            "--work-dir", str(work), "--out", str(out)]
    assert evidence.main(argv) == 0
    data = json.loads((out / "table_i.json").read_text())
    assert set(data["rows"]) == {"chance", "mfcc", "hubert_small", "mert_small"}
    text = (out / "table_i.md").read_text()
    for reference, task, group in (("hubert_small", "ks", "speech"), ("mert_small", "pitch", "music")):
        score = data["rows"][reference]["scores"][group]  # 1000 by definition, undefined when the reference is at chance
        assert score == pytest.approx(1000) or (score is None and f"- {task}: the reference is at chance" in text)
        assert data["rows"]["chance"]["scores"][task] in (0, None)
    assert len(data["rows"]["mfcc"]["accuracy"]["ks"]) == 2  # one accuracy per seed
    verdicts = {c["claim"]["key"]: c["verdict"] for c in data["claims"]}
    assert verdicts["id5_gt_id4"] == NOT_RUN  # merges were not among the rows
    assert set(verdicts.values()) <= {SUPPORTED, CONTRADICTED, UNDECIDED, NOT_RUN}
    assert text.index("## The paper's claims") < text.index("## Full table")
    assert "| `mfcc` |" in text and (out / "table_i.png").stat().st_size > 0
    assert "which reused 0 of 8 cells" in text and "Summed cell seconds ÷ 1 workers" in text
    predictions = json.loads((out / "predictions.json").read_text())
    clips = predictions["ks"]["clips"]
    assert len(predictions["ks"]["rows"]["mfcc"]) == 2 and all(len(s) == len(clips) for s in predictions["ks"]["rows"]["mfcc"])
    results = sorted((work / "results").glob("*.json"))
    assert len(results) == 8  # 4 rows x 2 tasks
    stamps = {p: p.stat().st_mtime_ns for p in results}
    assert evidence.main(argv + ["--collect-only"]) == 0  # the table again from the saved cells, nothing rerun
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert json.loads((out / "table_i.json").read_text())["rows"] == data["rows"]
    assert "which reused 8 of 8 cells" in (out / "table_i.md").read_text()


def test_unknown_rows_and_missing_sets_are_refused(tmp_path):
    evidence = tool("evidence_table")
    with pytest.raises(SystemExit, match="unknown row"):
        evidence.select_rows(["hubert_small", "no_such_row"], quick=False)
    with pytest.raises(SystemExit, match="lacks the data"):
        evidence.main(["--evalsets", str(tmp_path), "--tasks", "ks", "--work-dir", str(tmp_path / "w")])


def test_rows_always_include_chance_and_both_references():
    evidence = tool("evidence_table")
    labels = [r.label for r in evidence.select_rows(["linear"], quick=False)]
    assert labels == ["chance", "hubert_small", "mert_small", "linear"]
    assert [r.label for r in evidence.select_rows(None, quick=True)] == list(evidence.QUICK_ROWS)


def test_sweep_rows_point_at_written_recipes(tmp_path):
    evidence = tool("evidence_table")
    rows = evidence.sweep_recipes(evidence.select_rows(["aligned_0.5", "linear_0.7"], quick=False), tmp_path)
    by_label = {r.label: r for r in rows}
    assert by_label["aligned_0.5"].ckpt.endswith("small_hubert_mert_cnn_ffn_attn_alpha0.50.yaml")
    assert by_label["linear_0.7"].ckpt.endswith("small_hubert_mert_linear_alpha0.70.yaml")
    import yaml

    recipe = yaml.safe_load((tmp_path / "small_hubert_mert_linear_alpha0.70.yaml").read_text())
    assert recipe["alpha"] == 0.7 and recipe["components"] == []


def test_finetune_peaks_flag_runs_still_improving_at_the_budget_end():
    from types import SimpleNamespace

    from upstream_merged.evaluation.cells import Row

    evidence = tool("evidence_table")
    rows = [Row("hconv", "hconv_hubert_small", "finetune", "h", finetune=True), Row("mfcc", "mfcc", "hand", "m")]
    seeds = [{"steps": 300, "dev_curve": [[100, 0.2], [200, 0.5], [300, 0.4]]},
             {"steps": 300, "dev_curve": [[100, 0.2], [200, 0.3], [300, 0.6]]}]
    cells = {("hconv", "ks"): {"seeds": seeds}, ("mfcc", "ks"): {"seeds": [{}]}}
    lines = evidence.finetune_peak_lines(rows, [SimpleNamespace(name="ks")], cells)
    assert "| `hconv` | ks | 200, 300 / 300 | 0.500 / 0.400; 0.600 / 0.600 | 1 of 2 | +0.300, +0.400 |" in lines
    assert lines[-2].startswith("1 of 2 fine-tuned runs had their best dev accuracy at their last evaluation")
    assert lines[-1].startswith("2 of 2 raised their dev-best by 0.01 or more over the second half")
    assert evidence.second_half_gain([[100, 0.5], [300, 0.505], [400, 0.3]], 400) == pytest.approx(0.005)
    assert evidence.second_half_gain([[300, 0.5]], 400) == 0.0
    assert evidence.finetune_peak_lines(rows[1:], [SimpleNamespace(name="ks")], cells) == []
