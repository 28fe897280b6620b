"""Synthesize a tiny LibriSpeech corpus with a phone lexicon for s3prl's ``ctc`` phoneme recognition (SUPERB PR).

    <out>/LibriSpeech/...   the corpus of tools/make_librispeech.py (flac + trans.txt per chapter; its
                            len_for_bucket/ and char.dict are kept, so the asr recipe reads it too)
    <out>/lexicon.txt       "WORD P1 P2 ..." for every word of the corpus, phones from espeak-ng -x
                            (en-us, stress marks dropped), the format of s3prl's ctc/lexicon/*.txt
    <out>/phoneme.txt       the phone vocabulary, one per line (as s3prl's ctc/vocab/phoneme.txt)

The recipe maps each transcript word through the lexicon, so its targets are these phone sequences.
Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List

from upstream_merged.data.runner import Layout, RecipeOverrides, recipe_report
from upstream_merged.data import librispeech as make_librispeech
from upstream_merged.data.shared import atomic_output_dir, require_tools

LEXICON_VOICE = "en-us"
STRESS = str.maketrans("", "", "',%=")


def phones(word: str) -> List[str]:
    """espeak-ng's phoneme mnemonics for one word, stress and syllable marks dropped."""
    result = subprocess.run(["espeak-ng", "-q", "-x", "--sep= ", "-v", LEXICON_VOICE, word.lower()],
                            capture_output=True, text=True, check=True)
    found = [p.translate(STRESS) for p in result.stdout.split()]
    return [p for p in found if p]


def build(out: Path, speakers: int = 2, chapters: int = 1, utterances: int = 4, seed: int = 0,
          workers: int = 2) -> Dict[str, int]:
    """Write the corpus, lexicon and phone vocabulary under ``out`` (atomically); return counts."""
    require_tools("espeak-ng", "sox")
    with atomic_output_dir(out) as tmp:
        counts = make_librispeech.build(tmp, speakers, chapters, utterances, seed, workers)
        words = sorted({w for trans in (tmp / "LibriSpeech").rglob("*.trans.txt")
                        for line in trans.read_text().splitlines() for w in line.split()[1:]})
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            lexicon = dict(zip(words, pool.map(phones, words)))
        empty = [w for w, p in lexicon.items() if not p]
        if empty:
            raise RuntimeError(f"espeak-ng gave no phones for {empty}")
        (tmp / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in lexicon.items()))
        (tmp / "phoneme.txt").write_text("".join(f"{p}\n" for p in sorted({p for ps in lexicon.values() for p in ps})))
    return {**counts, "words": len(words)}


# the run_downstream.py -o string pointing the ctc (libriphone) recipe at a corpus made by this layout
overrides = RecipeOverrides(("corpus.path={out}/LibriSpeech", "corpus.lexicon=['{out}/lexicon.txt']",
                             "text.vocab_file={out}/phoneme.txt"))


LAYOUT = Layout(
    name="libriphone", description=__doc__, options=make_librispeech.CORPUS_OPTIONS,
    write=lambda a: build(a.out, a.speakers, a.chapters, a.utterances, a.seed, a.workers),
    report=recipe_report("-d ctc", overrides))
