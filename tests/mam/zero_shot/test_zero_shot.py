"""Zero-shot MAM: λ = 0 reproduces the unmerged model exactly, λ = 1 on one layer changes exactly that layer's chosen
components, and `python -m upstream_merged mam-eval` writes its tables on tiny data and resumes per cell."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from upstream_merged.__main__ import main
from upstream_merged.mam.zero_shot.data import read_esc50_items, read_ljspeech
from upstream_merged.mam.zero_shot.metrics import error_counts, normalise_transcript, vocabulary_charset
from upstream_merged.mam.loading import load_attention_model
from upstream_merged.mam.zero_shot.run import (CELLS_FILE, DatasetSpec, ZeroShotGrid, cell_plan, component_roles,
                                               evaluate_merged, load_grid, merged_encoder_state, plan_cells,
                                               subset_layers)
from upstream_merged.sources import resolve_source
from upstream_merged.tiny.task_models import LS960_FT_VOCAB

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import make_ljspeech  # noqa: E402


@pytest.fixture(scope="module")
def ljspeech(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zs") / "LJSpeech-1.1"
    make_ljspeech.build(root, utterances=3, seed=0)
    return root


def _loaded(name: str):
    return load_attention_model(resolve_source(name))


def test_normalisation_follows_the_ctc_vocabulary():
    charset = vocabulary_charset(LS960_FT_VOCAB)
    assert charset == "".join(sorted("ABCDEFGHIJKLMNOPQRSTUVWXYZ'"))
    assert normalise_transcript("Mr. Smith's dog-house, said: \"3 cats!\"", charset) == "MR SMITH'S DOG HOUSE SAID CATS"
    counts = error_counts([("A B C", "A X C D"), ("HELLO", "HELLO")])
    assert (counts.word_errors, counts.words) == (2, 4) and counts.wer == 0.5


def test_layer_subsets_and_components():
    assert subset_layers("all", 12) == list(range(12)) and subset_layers("lower", 12) == list(range(6))
    assert subset_layers("upper", 12) == list(range(6, 12)) and subset_layers("third2", 12) == [4, 5, 6, 7]
    assert subset_layers("0-2,5", 12) == [0, 1, 2, 5] and subset_layers("third3", 2) == []
    assert component_roles("qkv") == ("q", "k", "v") and component_roles("vq") == ("q", "v")
    assert component_roles("o") == ("out",)
    with pytest.raises(ValueError, match="letters q, k, v, o"):
        component_roles("qq")
    with pytest.raises(ValueError, match="0..11"):
        subset_layers("12", 12)


def test_lambda_one_on_one_layer_changes_exactly_that_layers_chosen_components():
    target, source = _loaded("tiny:hubert_ctc:0"), _loaded("tiny:bert:0")
    original = {k: v.clone() for k, v in target.model.state_dict().items()}
    source_state = source.model.state_dict()
    plan = cell_plan(target, source, [1], component_roles("qv"), 1.0)
    merged = merged_encoder_state(original, target, source, source_state, plan)
    changed = {k for k in original if not torch.equal(original[k], merged[k])}
    expected = {f"encoder.layers.1.attention.{p}_proj.{t}" for p in "qv" for t in ("weight", "bias")}
    assert changed == expected
    assert torch.equal(merged["encoder.layers.1.attention.q_proj.weight"],
                       source_state["encoder.layer.1.attention.self.query.weight"])
    assert torch.equal(merged["encoder.layers.1.attention.v_proj.bias"],
                       source_state["encoder.layer.1.attention.self.value.bias"])
    zero = merged_encoder_state(original, target, source, source_state, cell_plan(target, source, [0, 1], ("q", "k", "v"), 0.0))
    assert all(torch.equal(original[k], zero[k]) for k in original)  # λ = 0 is bit-identical


def test_lambda_zero_reproduces_the_unmerged_wer_and_accuracy_exactly(ljspeech, esc50_root):
    items = read_ljspeech(ljspeech)
    target, source = _loaded("tiny:hubert_ctc:0"), _loaded("tiny:bert:0")
    unmerged = evaluate_merged(target, None, "ljspeech", items)
    assert unmerged["words"] > 0 and unmerged["utterances"] == 3
    assert evaluate_merged(target, source, "ljspeech", items, layers=[0, 1], lam=0.0) == unmerged
    moved = evaluate_merged(target, source, "ljspeech", items, layers=[0, 1], lam=1.0)
    assert moved["cer"] != unmerged["cer"]  # a full swap changes the decoding
    assert evaluate_merged(target, None, "ljspeech", items) == unmerged  # the target was restored

    clips = read_esc50_items(esc50_root, folds=[1])
    classifier, vit = _loaded("tiny:beats_esc50:0"), _loaded("tiny:vit:0")
    reference = evaluate_merged(classifier, None, "esc50", clips)
    assert reference["clips"] == 12 and reference["error"] == pytest.approx(1 - reference["accuracy"])
    assert evaluate_merged(classifier, vit, "esc50", clips, layers=[0, 1], lam=0.0) == reference
    with pytest.raises(ValueError, match="needs a HubertForCTC target"):
        evaluate_merged(classifier, None, "ljspeech", items)


def test_mam_eval_writes_tables_and_curve_and_resumes(tmp_path, ljspeech, esc50_root, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"method": "mam", "lambda": 0.05,
                                      "sources": {"target": "tiny:hubert_ctc:0", "source": "tiny:bert:0"}}))
    out = tmp_path / "out"
    args = ["--quiet", "mam-eval", str(recipe), "--out", str(out), "--lambdas", "0,0.1,1", "--layers", "all+lower+third3",
            "--components", "q+qkv", "--ljspeech", str(ljspeech)]
    assert main(args) == 0
    assert "9 cells evaluated, 0 finished before" in capsys.readouterr().out  # reference + 2 subsets x 2 x 2 λ
    lines = (out / CELLS_FILE).read_text().splitlines()
    assert len(lines) == 9 and json.loads(lines[0])["cell"]["source"] == "(unmerged)"
    with open(out / "zero_shot.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    reference = float(rows[0]["value"])
    assert rows[0]["source"] == "(unmerged)" and rows[0]["metric"] == "wer"
    for row in rows[1:]:
        expected = (float(row["value"]) - reference) / reference
        assert float(row["reference"]) == reference and float(row["relative_change"]) == pytest.approx(expected)
    assert {(r["layers"], r["components"], r["lambda"]) for r in rows[1:]} == {
        (layers, comp, lam) for layers in ("all", "lower") for comp in ("q", "qkv") for lam in ("0.1", "1.0")}
    text = (out / "zero_shot.md").read_text()
    assert "| (unmerged) | - | - |" in text and "λ=0 (reference)" in text and "Best:" in text
    assert (out / "zero_shot_lambda_curve.png").read_bytes()[:4] == b"\x89PNG"

    # resumable: a rerun evaluates nothing; a torn last line is evaluated again; a wider grid adds only new cells
    assert main(args) == 0 and "0 cells evaluated, 9 finished before" in capsys.readouterr().out
    (out / CELLS_FILE).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    assert main(args) == 0 and "1 cells evaluated, 8 finished before" in capsys.readouterr().out
    assert main(args[:6] + ["0,0.05,0.1,1"] + args[7:]) == 0
    assert "4 cells evaluated, 9 finished before" in capsys.readouterr().out

    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"target": "tiny:beats_esc50:0", "sources": ["tiny:vit:0", "tiny:bert:0"],
                                    "lambdas": [0.1], "layer_subsets": ["upper"], "components": ["k"],
                                    "datasets": [{"name": "esc", "kind": "esc50", "root": str(esc50_root), "folds": [2]}],
                                    "output_dir": "esc_out"}))
    assert main(["--quiet", "mam-eval", str(grid)]) == 0
    with open(tmp_path / "esc_out" / "zero_shot.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["source"] for r in rows] == ["(unmerged)", "tiny:vit:0", "tiny:bert:0"]
    assert all(r["metric"] == "error" and r["n"] == "12" for r in rows)
    with pytest.raises(ValueError, match="another output directory"):
        from upstream_merged.mam.zero_shot.run import run_zero_shot

        run_zero_shot(load_grid(grid, target="tiny:beats_esc50:1"), progress=False)


def test_default_grid_plans_reference_plus_every_cell():
    grid = ZeroShotGrid(target="t", sources=["a", "b"], datasets=[DatasetSpec(name="lj", kind="ljspeech", root="/x")])
    assert grid.lambdas == [0.0, 0.01, 0.025, 0.05, 0.1, 0.2]
    cells = plan_cells(grid, num_layers=12)
    assert cells[0].is_reference and len(cells) == 1 + 2 * 6 * 4 * 5  # sources x subsets x components x λ>0
    with pytest.raises(ValueError, match="outside"):
        ZeroShotGrid(target="t", sources=["a"], lambdas=[1.5])
