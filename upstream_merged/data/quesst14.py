"""Synthesize a small QUESST 2014-layout set for s3prl's ``quesst14_dtw`` query-by-example recipe (SUPERB QbE).

    <out>/quesst14Database/Audio/quesst14_<nnnnn>.wav          search documents (sentences)
    <out>/quesst14Database/dev_queries/quesst14_dev_<nnnn>.wav  spoken terms, dev queries
    <out>/quesst14Database/eval_queries/quesst14_eval_<nnnn>.wav
    <out>/quesst14Database/scoring/language_key_{utterances,dev,eval}.lst   "quesst14Database/<dir>/<file>.wav nnenglish"
    <out>/quesst14Database/scoring/synthetic_truth.tsv          query, document, 1 if the document says the term

Every term is a word spoken alone by a query voice; documents are seeded sentences by other voices, half
of them containing one of the terms. The recipe only reads the .lst files and the audio; MTWV needs
QUESST's own scoring kit, so synthetic_truth.tsv (our format) records the ground truth instead.
Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Tuple

from upstream_merged.data.runner import Layout, RecipeOverrides, WORKERS, option, recipe_report
from upstream_merged.data.librispeech import sentence
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, synthesize_all

TERMS = ["computer", "elephant", "banana", "umbrella", "telephone", "chocolate", "mountain", "yesterday"]
ROOT = "quesst14Database"
TRIM = ("silence", "1", "0.02", "1%", "reverse", "silence", "1", "0.02", "1%", "reverse")


def plan(documents: int, seed: int) -> Dict[str, List[Tuple[str, str, int, str]]]:
    """Per list (utterances, dev, eval): (relative wav path, text, speaker index, term or '')."""
    rng = random.Random(seed)
    half = len(TERMS) // 2
    lists = {"dev": [], "eval": [], "utterances": []}
    for split, terms, voice in (("dev", TERMS[:half], 0), ("eval", TERMS[half:], 1)):
        for n, term in enumerate(terms):
            lists[split].append((f"{split}_queries/quesst14_{split}_{n:04d}.wav", term, voice, term))
    for n in range(documents):
        term = TERMS[(n // 2) % len(TERMS)] if n % 2 == 0 else ""
        words = sentence(rng, 2, 4).lower().split()
        if term:
            words.insert(rng.randint(0, len(words)), term)
        lists["utterances"].append((f"Audio/quesst14_{n + 1:05d}.wav", " ".join(words), 2 + n % 6, term))
    return lists


def build(out: Path, documents: int = 16, seed: int = 0, workers: int = 2) -> Dict[str, int]:
    """Write audio, .lst files and the truth table under ``out`` (atomically); return items per list."""
    require_tools("espeak-ng", "sox")
    lists = plan(documents, seed)
    with atomic_output_dir(out) as tmp:
        root = tmp / ROOT
        synthesize_all([(text, Speaker.from_index(voice), root / path, TRIM)
                        for items in lists.values() for path, text, voice, _ in items], workers)
        (root / "scoring").mkdir()
        for name, items in lists.items():
            (root / "scoring" / f"language_key_{name}.lst").write_text(
                "".join(f"{ROOT}/{path} nnenglish\n" for path, *_ in items))
        truth = ["query\tdocument\tmatch\n"]
        for split in ("dev", "eval"):
            for qpath, _, _, term in lists[split]:
                for dpath, _, _, doc_term in lists["utterances"]:
                    truth.append(f"{Path(qpath).stem}\t{Path(dpath).stem}\t{int(term == doc_term)}\n")
        (root / "scoring" / "synthetic_truth.tsv").write_text("".join(truth))
    return {name: len(items) for name, items in lists.items()}


# the run_downstream.py -o string pointing the quesst14_dtw recipe at a set made by this layout
overrides = RecipeOverrides((f"datarc.dataset_root={{out}}/{ROOT}",))


LAYOUT = Layout(
    name="quesst14", description=__doc__, write=lambda a: build(a.out, a.documents, a.seed, a.workers),
    options=(option("--documents", type=int, default=16, help="search documents"),
             option("--seed", type=int, default=0, help="seed of the sentences"), WORKERS),
    report=recipe_report("-m evaluate -t dev -d quesst14_dtw", overrides))
