"""Synthesize a small IEMOCAP-style corpus for s3prl's ``emotion`` recipe (SUPERB ER, 4 classes).

    <out>/Session<k>/sentences/wav/Ses0<k>F_impro01/Ses0<k>F_impro01_<F|M><nnn>.wav   16 kHz mono 16-bit
    <out>/Session<k>/dialog/EmoEvaluation/Ses0<k>F_impro01.txt   IEMOCAP's label lines:
                                               "[start - end]\\t<utterance>\\t<label>\\t[v, a, d]"
    <out>/meta_data/Session<k>/{train,test}_meta_data.json       written by s3prl's own
                                               emotion/IEMOCAP_preprocess.py (leave-one-session-out)

Five sessions, each one dialog with a female and a male speaker (espeak-ng voices), utterances
styled per class: neu (plain), hap (higher pitch, faster), ang (faster, louder), sad (lower pitch,
slower, quieter). Labels use IEMOCAP's codes; a few 'exc' lines (merged into hap by the preprocessing)
and 'fru' lines (dropped by it) are written as the real label files carry them.
Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Dict, List, Tuple

from upstream_merged.data.runner import Layout, RecipeOverrides, WORKERS, option, recipe_report
from upstream_merged.data.librispeech import sentence
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, synthesize_all

SESSIONS = 5
# label -> (pitch offset, speed offset, sox volume); 'exc' is spoken like 'hap', 'fru' like 'ang'.
STYLES: Dict[str, Tuple[int, int, float]] = {
    "neu": (0, 0, 1.0),
    "hap": (25, 35, 1.0),
    "exc": (25, 35, 1.0),
    "ang": (10, 55, 1.8),
    "fru": (10, 55, 1.8),
    "sad": (-25, -45, 0.35),
}
CLASSES = ("neu", "hap", "ang", "sad")


def _dialog(session: int) -> str:
    return f"Ses{session:02d}F_impro01"


def plan(utterances: int, seed: int) -> List[Tuple[int, str, str, str, Speaker]]:
    """(session, utterance name, label, text, styled speaker) for every utterance, in label-file order."""
    rng = random.Random(seed)
    items = []
    labels = [label for label in CLASSES for _ in range(utterances)] + ["exc", "fru"]
    for session in range(1, SESSIONS + 1):
        counters = {"F": 0, "M": 0}
        for gender_index, gender in enumerate("FM"):
            base = Speaker.from_index(2 * session + gender_index)
            for label in labels:
                pitch, speed, _ = STYLES[label]
                styled = dataclasses.replace(base, pitch=max(0, min(99, base.pitch + pitch)), speed=base.speed + speed)
                name = f"{_dialog(session)}_{gender}{counters[gender]:03d}"
                counters[gender] += 1
                items.append((session, name, label, sentence(rng, 2, 5).lower(), styled))
    return items


def _label_line(index: int, name: str, label: str) -> str:
    start = 2.5 * index
    return f"[{start:.4f} - {start + 2.0:.4f}]\t{name}\t{label}\t[2.5000, 2.5000, 2.5000]\n"


def build(out: Path, utterances: int = 2, seed: int = 0, workers: int = 2) -> Dict[str, int]:
    """Write the sessions, label files and s3prl's meta_data under ``out`` (atomically); return counts."""
    require_tools("espeak-ng", "sox")
    from s3prl.downstream.emotion import IEMOCAP_preprocess

    items = plan(utterances, seed)
    with atomic_output_dir(out) as tmp:
        jobs = []
        for session, name, label, text, speaker in items:
            wav = tmp / f"Session{session}" / "sentences" / "wav" / _dialog(session) / f"{name}.wav"
            jobs.append((text, speaker, wav, ("vol", str(STYLES[label][2]))))
        synthesize_all(jobs, workers)
        for session in range(1, SESSIONS + 1):
            label_dir = tmp / f"Session{session}" / "dialog" / "EmoEvaluation"
            label_dir.mkdir(parents=True)
            lines = [_label_line(i, name, label) for i, (s, name, label, _, _) in enumerate(items) if s == session]
            (label_dir / f"{_dialog(session)}.txt").write_text("% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
                                                               + "".join(lines))
        IEMOCAP_preprocess.main(str(tmp))
    counts = {label: sum(1 for item in items if item[2] == label) for label in STYLES}
    counts["hap"] += counts.pop("exc")
    counts.pop("fru")
    return counts


# the run_downstream.py -o string pointing the emotion recipe at a corpus made by this layout
overrides = RecipeOverrides(("datarc.root={out}", "datarc.meta_data={out}/meta_data"))


LAYOUT = Layout(
    name="iemocap", description=__doc__, write=lambda a: build(a.out, a.utterances, a.seed, a.workers),
    options=(option("--utterances", type=int, default=2, help="utterances per speaker and class"),
             option("--seed", type=int, default=0, help="seed of the sentence generator"), WORKERS),
    report=recipe_report("-d emotion", overrides))
