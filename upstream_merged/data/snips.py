"""Synthesize a small Audio-SNIPS-style set for s3prl's ``ctc`` slot filling recipe (SUPERB SF).

    <out>/SNIPS/{train,valid,test}/<Speaker>-snips-<split>-<n>.wav   16 kHz mono 16-bit
    <out>/SNIPS/all.iob.snips.txt   "<uid> BOS W1 ... EOS\\tO S1 ... <intent>" (the slot of every word, O = none)
    <out>/SNIPS/all-trans.txt       "<uid> W1 ..."  (plain transcripts)
    <out>/SNIPS/slots.txt           "O" then one slot name per line
    <out>/character.txt             the character vocabulary (space, A-Z, apostrophe), as s3prl's ctc/vocab/character.txt

Speakers carry Audio SNIPS's (Amazon Polly) names so the SUPERB speaker split of ctc_snips.yaml applies;
each is an espeak-ng voice (tools/synth.py). Utterances come from slot-filling templates of SNIPS's
intents with seeded fillers. Deterministic: the same arguments give the same bytes. Needs espeak-ng and sox.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Tuple

from upstream_merged.data.runner import Layout, RecipeOverrides, WORKERS, option, recipe_report
from upstream_merged.data.shared import Speaker, atomic_output_dir, require_tools, synthesize_all

# The speaker split of SUPERB's snips config (ctc_snips.yaml).
SPEAKERS = {
    "train": ["Ivy", "Joanna", "Joey", "Justin", "Kendra", "Kimberly", "Matthew", "Salli"],
    "valid": ["Aditi", "Amy", "Geraint", "Nicole"],
    "test": ["Brian", "Emma", "Raveena", "Russell"],
}
FILLERS = {
    "artist": ["ADELE", "MADONNA", "THE BEATLES", "BOB DYLAN"],
    "service": ["SPOTIFY", "YOUTUBE", "DEEZER"],
    "city": ["PARIS", "BOSTON", "LONDON", "TOKYO"],
    "timeRange": ["TOMORROW", "TONIGHT", "NEXT WEEK"],
    "playlist": ["ROAD TRIP", "WORKOUT", "CHILL EVENING"],
    "rating_value": ["ONE", "THREE", "FIVE"],
    "object_name": ["THE HOBBIT", "DUNE", "EMMA"],
}
# (intent, template): "{slot}" words are filled from FILLERS, other words are O
TEMPLATES: List[Tuple[str, str]] = [
    ("PlayMusic", "PLAY {artist} ON {service}"),
    ("PlayMusic", "PLAY SOME {artist}"),
    ("GetWeather", "WHAT IS THE WEATHER IN {city} {timeRange}"),
    ("GetWeather", "WILL IT RAIN IN {city}"),
    ("AddToPlaylist", "ADD {artist} TO MY {playlist} PLAYLIST"),
    ("RateBook", "RATE {object_name} {rating_value} STARS"),
]
CHARACTERS = [" "] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["'"]


def utterance(rng: random.Random) -> Tuple[str, List[str], List[str]]:
    """(intent, words, slot of each word) from a random template."""
    intent, template = rng.choice(TEMPLATES)
    words, slots = [], []
    for token in template.split():
        if token.startswith("{"):
            name = token[1:-1]
            filler = rng.choice(FILLERS[name]).split()
            words += filler
            slots += [name] * len(filler)
        else:
            words.append(token)
            slots.append("O")
    return intent, words, slots


def plan(per_speaker: int, seed: int) -> Dict[str, List[Tuple[str, str, int, List[str], List[str]]]]:
    """Per split: (uid, intent, speaker index, words, slots)."""
    rng = random.Random(seed)
    items: Dict[str, list] = {}
    index = 0
    for split, speakers in SPEAKERS.items():
        items[split] = []
        for speaker in speakers:
            for n in range(per_speaker):
                intent, words, slots = utterance(rng)
                items[split].append((f"{speaker}-snips-{split}-{n}", intent, index, words, slots))
            index += 1
    return items


def build(out: Path, per_speaker: int = 4, seed: int = 0, workers: int = 2) -> Dict[str, int]:
    """Write audio, transcripts, slots and the character vocabulary under ``out`` (atomically)."""
    require_tools("espeak-ng", "sox")
    items = plan(per_speaker, seed)
    with atomic_output_dir(out) as tmp:
        root = tmp / "SNIPS"
        synthesize_all([(" ".join(words).lower(), Speaker.from_index(index), root / split / f"{uid}.wav", ())
                        for split, rows in items.items() for uid, _, index, words, _ in rows], workers)
        rows = [row for split in SPEAKERS for row in items[split]]
        (root / "all.iob.snips.txt").write_text("".join(
            f"{uid} BOS {' '.join(words)} EOS\tO {' '.join(slots)} {intent}\n" for uid, intent, _, words, slots in rows))
        (root / "all-trans.txt").write_text("".join(f"{uid} {' '.join(words)}\n" for uid, _, _, words, _ in rows))
        (root / "slots.txt").write_text("\n".join(["O", *sorted(FILLERS)]))
        (tmp / "character.txt").write_text("".join(f"{c}\n" for c in CHARACTERS))
    return {split: len(rows) for split, rows in items.items()}


# the run_downstream.py -o string pointing the ctc (snips) recipe at a set made by this layout
overrides = RecipeOverrides(("corpus.path={out}/SNIPS", "text.slots_file={out}/SNIPS/slots.txt",
                             "text.vocab_file={out}/character.txt"))


LAYOUT = Layout(
    name="snips", description=__doc__, write=lambda a: build(a.out, a.per_speaker, a.seed, a.workers),
    options=(option("--per-speaker", type=int, default=4, help="utterances per speaker"),
             option("--seed", type=int, default=0, help="seed of templates and fillers"), WORKERS),
    report=recipe_report("-d ctc", overrides))
