"""Synthesize a GTZAN-layout genre set (upstream_merged.synth.music arrangements) for the gtzan_genre task.

    <out>/genres/<genre>/<genre>.000NN.wav   22.05 kHz, 16-bit mono, the 10 GTZAN genre names
    <out>/{train,valid,test}_filtered.txt    only with --split-lists: lines 'blues/blues.00029.wav'

Clips are shorter than GTZAN's 30 s by default (--seconds 10) to keep generation and training cheap
on a CPU. Each "genre" is a distribution over tempo, mode, chord progression, chord size, comping
pattern, timbres, bass line, melody density, drum pattern, swing and overdrive (``GENRES``) —
genre-*style* classes that a model can only tell apart from rhythm, harmony and timbre, not one
fixed waveform. GTZAN itself ships no split; with --split-lists the tool writes lists in the format
of the fault-filtered split (Kereliuk et al. 2015) that MARBLE uses, with that split's proportions
(443/197/290 of 930 ~ 48/21/31 %), stratified per genre and seeded. Without them, the gtzan_genre
task draws its own seeded stratified split. Deterministic: the same arguments give the same bytes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from upstream_merged.data.runner import Layout, option
from upstream_merged.data.shared import atomic_output_dir
from upstream_merged.downstream.readers import GTZAN_GENRES, GTZAN_LISTS
from upstream_merged.synth import music

log = logging.getLogger("make_gtzan")

SAMPLE_RATE = 22050  # GTZAN's rate
FILTERED_SPLIT = (443, 197, 290)  # train / valid / test sizes of the fault-filtered split

# genre -> distributions; a tuple is a uniform choice, a (lo, hi) pair under "tempo"/"density"/"swing"/"drive"
# is a uniform range
GENRES: dict[str, dict] = {
    "blues": dict(tempo=(70, 100), mode=("mixolydian",), progression=("twelve-bar",), chord_size=(4,),
                  comping=("quarter", "half"), chord_timbre=("organ", "fm"), bass_pattern=("walking", "root"),
                  melody_timbre=("reed", "brass", "bowed"), density=(0.8, 1.5), drums=("shuffle",), swing=(0.25, 0.35),
                  drive=(0.0, 0.5)),
    "classical": dict(tempo=(60, 110), mode=("major", "minor"), progression=("I-IV-V-I", "ii-V-I-I", "i-iv-v-i"),
                      chord_size=(3,), comping=("arpeggio", "block", "arpeggio16"), chord_timbre=("bowed", "additive"),
                      bass_pattern=("root",), bass_timbre=("bowed",), melody_timbre=("additive", "bowed", "reed"),
                      density=(1.0, 2.0), drums=("none",), swing=(0.0, 0.0), drive=(0.0, 0.0)),
    "country": dict(tempo=(100, 140), mode=("major",), progression=("I-IV-V-I", "I-IV"), chord_size=(3,),
                    comping=("quarter", "arpeggio"), chord_timbre=("plucked",), bass_pattern=("root",),
                    melody_timbre=("bowed", "plucked"), density=(1.0, 2.0), drums=("country",), swing=(0.0, 0.1),
                    drive=(0.0, 0.0)),
    "disco": dict(tempo=(115, 130), mode=("minor", "dorian"), progression=("i-VII-VI-VII", "i-iv-v-i"),
                  chord_size=(3, 4), comping=("offbeat", "quarter"), chord_timbre=("fm", "bowed"),
                  bass_pattern=("octaves",), melody_timbre=("brass", "additive"), density=(0.8, 1.5),
                  drums=("disco",), swing=(0.0, 0.0), drive=(0.0, 0.0)),
    "hiphop": dict(tempo=(80, 98), mode=("minor", "dorian"), progression=("i-VI-III-VII", "i-iv-v-i"),
                   chord_size=(3, 4), comping=("block", "half"), chord_timbre=("fm", "organ"), bass_pattern=("root",),
                   melody_timbre=("percussive", "fm", None), density=(0.3, 0.8), drums=("hiphop",),
                   swing=(0.15, 0.3), drive=(0.0, 0.0), drum_gain=(0.8, 1.0)),
    "jazz": dict(tempo=(100, 180), mode=("dorian", "major"), progression=("ii-V-I-I",), chord_size=(4,),
                 comping=("half", "quarter"), chord_timbre=("fm", "additive"), bass_pattern=("walking",),
                 melody_timbre=("brass", "reed"), density=(1.5, 2.5), drums=("jazz",), swing=(0.3, 0.4),
                 drive=(0.0, 0.0)),
    "metal": dict(tempo=(140, 180), mode=("minor",), progression=("i-VI-III-VII", "i-VII-VI-VII"), chord_size=(2,),
                  comping=("arpeggio16", "quarter"), chord_timbre=("brass", "plucked"), bass_pattern=("octaves",),
                  melody_timbre=("brass", None), density=(1.5, 3.0), drums=("metal",), swing=(0.0, 0.0),
                  drive=(4.0, 8.0)),
    "pop": dict(tempo=(95, 125), mode=("major",), progression=("I-V-vi-IV", "I-vi-IV-V"), chord_size=(3,),
                comping=("quarter", "block", "arpeggio"), chord_timbre=("fm", "additive", "organ"),
                bass_pattern=("root", "octaves"), melody_timbre=("additive", "reed", "fm"), density=(1.0, 1.5),
                drums=("pop",), swing=(0.0, 0.0), drive=(0.0, 0.0)),
    "reggae": dict(tempo=(65, 85), mode=("major", "minor"), progression=("I-IV", "I-V-vi-IV"), chord_size=(3,),
                   comping=("offbeat",), chord_timbre=("organ", "plucked"), bass_pattern=("root",),
                   melody_timbre=("additive", None), density=(0.4, 1.0), drums=("reggae",), swing=(0.0, 0.15),
                   drive=(0.0, 0.0)),
    "rock": dict(tempo=(110, 150), mode=("major", "mixolydian"), progression=("I-IV-V-I", "I-V-vi-IV", "I-IV"),
                 chord_size=(2, 3), comping=("quarter", "arpeggio"), chord_timbre=("plucked", "brass"),
                 bass_pattern=("octaves", "root"), melody_timbre=("brass", "plucked"), density=(1.0, 2.0),
                 drums=("rock",), swing=(0.0, 0.0), drive=(1.5, 3.0)),
}


def draw_arrangement(rng: np.random.Generator, genre: str) -> music.Arrangement:
    """One arrangement from the genre's distributions (random key)."""
    spec = GENRES[genre]

    def pick(key: str, default=None):
        options = spec.get(key, default)
        return options[int(rng.integers(len(options)))]

    def uniform(key: str, default=(0.0, 0.0)) -> float:
        lo, hi = spec.get(key, default)
        return float(rng.uniform(lo, hi))

    return music.Arrangement(
        tonic=int(rng.integers(12)), mode=pick("mode"), tempo=uniform("tempo"),
        progression=music.PROGRESSIONS[pick("progression")], chord_timbre=pick("chord_timbre"),
        chord_size=int(pick("chord_size")), comping=pick("comping"), bass_timbre=pick("bass_timbre", ("plucked",)),
        bass_pattern=pick("bass_pattern"), melody_timbre=pick("melody_timbre"), melody_density=uniform("density"),
        drums=pick("drums"), swing=uniform("swing"), drum_gain=uniform("drum_gain", (0.4, 0.7)), drive=uniform("drive"))


def split_lists(rng: np.random.Generator, names: dict[str, list[str]]) -> dict[str, list[str]]:
    """Stratified train/valid/test lists in the fault-filtered split's proportions."""
    lists = {split: [] for split in GTZAN_LISTS}
    total = sum(FILTERED_SPLIT)
    for genre, files in names.items():
        order = [files[i] for i in rng.permutation(len(files))]
        n_test = max(1, round(len(files) * FILTERED_SPLIT[2] / total))
        n_dev = max(1, round(len(files) * FILTERED_SPLIT[1] / total))
        lists["test"] += order[:n_test]
        lists["dev"] += order[n_test:n_test + n_dev]
        lists["train"] += order[n_test + n_dev:]
    return {split: sorted(files) for split, files in lists.items()}


def build(out: Path, clips_per_genre: int = 40, seconds: float = 10.0, seed: int = 0, write_lists: bool = False) -> dict:
    """Write the genre folders (and optionally the split lists) under ``out`` atomically; return counts."""
    if clips_per_genre < 3:
        raise ValueError("--clips-per-genre must be >= 3 (one each for train, dev and test)")
    with atomic_output_dir(out) as tmp:
        names = {}
        for g, genre in enumerate(GTZAN_GENRES):
            (tmp / "genres" / genre).mkdir(parents=True)
            names[genre] = []
            for i in range(clips_per_genre):
                rng = np.random.default_rng([seed, g, i])
                audio, _ = music.render_arrangement(rng, draw_arrangement(rng, genre), seconds, SAMPLE_RATE)
                name = f"{genre}.{i:05d}.wav"
                sf.write(tmp / "genres" / genre / name, audio, SAMPLE_RATE, subtype="PCM_16")
                names[genre].append(f"{genre}/{name}")
            log.info("%s: %d clips", genre, clips_per_genre)
        counts = {"clips": clips_per_genre * len(GTZAN_GENRES)}
        if write_lists:
            for split, files in split_lists(np.random.default_rng([seed, 999]), names).items():
                (tmp / GTZAN_LISTS[split]).write_text("".join(f"{f}\n" for f in files))
                counts[GTZAN_LISTS[split]] = len(files)
    return counts


LAYOUT = Layout(
    name="gtzan", description=__doc__, write=lambda a: build(a.out, a.clips_per_genre, a.seconds, a.seed, a.split_lists),
    options=(option("--clips-per-genre", type=int, default=40, help="clips per genre (GTZAN: 100; default 40)"),
             option("--seconds", type=float, default=10.0, help="clip length (GTZAN: 30; default 10)"),
             option("--split-lists", action="store_true",
                    help="also write {train,valid,test}_filtered.txt (MARBLE's format)"),
             option("--seed", type=int, default=0)),
    check=lambda a: ("--clips-per-genre must be >= 3 (one each for train, dev and test)"
                     if a.clips_per_genre < 3 else None))
