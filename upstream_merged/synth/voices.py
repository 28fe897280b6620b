"""Speakers from several Debian speech engines (espeak-ng, flite, festival), shaped by sox.

A ``Voice`` is an engine voice plus four independent speaker traits applied by sox after synthesis:
pitch (cents), formant scale (vocal-tract length: ``speed`` then the opposite ``pitch``), speaking rate
(``tempo``) and, for espeak-ng, its own accent/variant. Leading and trailing silence is trimmed. Every
step is deterministic for fixed arguments (sox runs with ``-R``), so a seeded generator gives the same
audio on every machine with the same package versions.
"""
from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# espeak-ng accents (English voices shipped with the Debian package) and variants (voice timbres).
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5",
                   "+klatt", "+klatt2", "+klatt3", "+croak")
# flite's built-in voices (Debian flite 2.2) and festival's Debian voices (festvox-* packages).
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
ENGINES = ("espeak", "flite", "festival")
ENGINE_PROGRAMS = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
APT_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival festvox-kallpc16k festvox-kdlpc16k "
                "festvox-us-slt-hts", "sox": "sox"}


class ToolMissingError(RuntimeError):
    """A speech engine or sox is not installed."""


def require_programs(*names: str) -> None:
    """Fail with the apt command that installs any missing program."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        packages = " ".join(APT_PACKAGES.get(n, n) for n in missing)
        raise ToolMissingError(f"missing program(s): {', '.join(missing)}; install them with "
                               f"`apt-get install -y {packages}` (tools/setup_env.sh does)")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: engine voice + pitch shift, formant scale, speaking rate (all independent)."""

    engine: str  # espeak | flite | festival
    name: str  # espeak "accent+variant", flite voice, festival voice
    pitch_cents: int = 0  # sox pitch shift
    formant: float = 1.0  # > 1 shorter vocal tract (higher formants), < 1 longer
    rate: float = 1.0  # sox tempo factor (> 1 faster)
    espeak_pitch: int = 50  # espeak-ng -p (0-99); ignored by the other engines

    @property
    def accent(self) -> str:
        """Accent label: the espeak-ng accent, or the engine voice for flite/festival."""
        return self.name.split("+")[0] if self.engine == "espeak" else f"{self.engine}:{self.name}"

    def sox_effects(self) -> List[str]:
        """sox effects realising the formant scale, pitch shift and rate, then trimming silence."""
        effects: List[str] = []
        if abs(self.formant - 1.0) > 1e-6:
            # speed scales pitch and formants together; the opposite pitch shift restores the pitch
            effects += ["speed", f"{self.formant:.4f}", "pitch", str(round(-1200 * math.log2(self.formant)))]
        if self.pitch_cents:
            effects += ["pitch", str(self.pitch_cents)]
        if abs(self.rate - 1.0) > 1e-6:
            effects += ["tempo", "-s", f"{self.rate:.4f}"]
        return effects + TRIM_SILENCE


# Trim leading and trailing silence below -45 dBFS (reverse, trim the front again, reverse back).
TRIM_SILENCE = ["silence", "1", "0.02", "-45d", "reverse", "silence", "1", "0.02", "-45d", "reverse"]


def _run(cmd: Sequence[str], stdin: str | None = None) -> None:
    result = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"command failed ({' '.join(cmd)}): {result.stderr.strip()[:300]}")


def _engine_wav(text: str, voice: Voice, raw: Path) -> None:
    """Let the voice's engine say ``text`` into ``raw`` (its native rate)."""
    if voice.engine == "espeak":
        _run(["espeak-ng", "-v", voice.name, "-p", str(voice.espeak_pitch), "-w", str(raw), text])
    elif voice.engine == "flite":
        _run(["flite", "-voice", voice.name, "-t", text, "-o", str(raw)])
    elif voice.engine == "festival":
        _run(["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(raw)], stdin=text)
    else:
        raise ValueError(f"engine={voice.engine!r} is not one of {list(ENGINES)}")


def synthesize(text: str, voice: Voice, out: Path, rate: int = 16000, extra_effects: Sequence[str] = ()) -> float:
    """Say ``text`` with ``voice`` into a 16-bit mono file at ``rate`` (silence trimmed); returns its seconds."""
    require_programs(ENGINE_PROGRAMS[voice.engine], "sox")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        _engine_wav(text, voice, raw)
        return _sox_voice(raw, voice, Path(out), rate, extra_effects)


def engine_names() -> Dict[str, Tuple[str, ...]]:
    """Every engine's voice names (espeak-ng as accent+variant)."""
    return {"espeak": tuple(a + v for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS),
            "flite": FLITE_VOICES, "festival": FESTIVAL_VOICES}


def random_voice(rng: np.random.Generator, engine_weights: Tuple[float, float, float] = (0.5, 0.3, 0.2)) -> Voice:
    """A voice drawn independently in engine/voice, pitch (-400..400 cents), formant (0.88..1.14), rate (0.8..1.3)."""
    engine = ENGINES[int(rng.choice(len(ENGINES), p=np.asarray(engine_weights) / sum(engine_weights)))]
    names = engine_names()[engine]
    name = names[int(rng.integers(len(names)))]
    return Voice(engine, name, pitch_cents=int(rng.integers(-400, 401)), formant=round(float(rng.uniform(0.88, 1.14)), 3),
                 rate=round(float(rng.uniform(0.8, 1.3)), 3), espeak_pitch=int(rng.integers(20, 80)))


# The trait ranges distinct_voices spreads speakers over; trait_distance measures in units of these spans.
PITCH_RANGE = (-450, 450)  # cents
FORMANT_RANGE = (0.86, 1.16)
RATE_RANGE = (0.78, 1.32)


# Engine voices built from the same recorded speaker: flite's kal/kal16 and festival's kal_diphone are one
# diphone set, flite's slt and festival's HTS slt one CMU ARCTIC speaker.
SAME_SPEAKER = {"flite:kal": "kal", "flite:kal16": "kal", "festival:kal_diphone": "kal",
                "flite:slt": "slt", "festival:cmu_us_slt_arctic_hts": "slt"}


def timbre(voice: Voice) -> str:
    """The recorded/modelled speaker under a voice: the espeak-ng variant (accent ignored), else the voice (aliases merged)."""
    if voice.engine == "espeak":
        return "espeak:" + (voice.name.split("+", 1)[1] if "+" in voice.name else "default")
    key = f"{voice.engine}:{voice.name}"
    return SAME_SPEAKER.get(key, key)


def trait_distance(a: Voice, b: Voice) -> float:
    """Euclidean distance of pitch, formant and rate, each divided by its :data:`PITCH_RANGE`-style span."""
    spans = (PITCH_RANGE[1] - PITCH_RANGE[0], FORMANT_RANGE[1] - FORMANT_RANGE[0], RATE_RANGE[1] - RATE_RANGE[0])
    diffs = (a.pitch_cents - b.pitch_cents, a.formant - b.formant, a.rate - b.rate)
    return math.sqrt(sum((d / s) ** 2 for d, s in zip(diffs, spans)))


def near_duplicates(voices: Sequence[Voice], min_distance: float) -> List[Tuple[int, int, float]]:
    """Pairs (i, j, distance) sharing a timbre (engine voice, accent ignored) closer than ``min_distance`` in traits."""
    out = []
    for i, j in itertools.combinations(range(len(voices)), 2):
        if timbre(voices[i]) == timbre(voices[j]):
            distance = trait_distance(voices[i], voices[j])
            if distance < min_distance:
                out.append((i, j, distance))
    return out


def _recorded_voices() -> Dict[str, Tuple[Voice, ...]]:
    """flite and festival voices grouped by the speaker they were built from (:func:`timbre`)."""
    groups: Dict[str, List[Voice]] = {}
    for engine in ("flite", "festival"):
        for name in engine_names()[engine]:
            voice = Voice(engine, name)
            groups.setdefault(timbre(voice), []).append(voice)
    return {key: tuple(group) for key, group in groups.items()}


def _cycle(rng: np.random.Generator, items: Sequence, n: int) -> list:
    """``n`` items taking every item in turn (a fresh shuffle per round): as balanced as ``n`` allows."""
    out: list = []
    while len(out) < n:
        out += [items[i] for i in rng.permutation(len(items))]
    return out[:n]


def _layout(rng: np.random.Generator, count: int, espeak_share: float) -> List[Voice]:
    n_espeak = int(round(count * espeak_share))
    # espeak-ng: accent and variant each cycle on their own, so they are balanced and independent
    bases = [Voice("espeak", a + v) for a, v in zip(_cycle(rng, ESPEAK_ACCENTS, n_espeak),
                                                     _cycle(rng, ESPEAK_VARIANTS, n_espeak))]
    # flite/festival: the recorded speakers in turn, each one's engine voices in turn
    recorded = _recorded_voices()
    turns = {key: iter(_cycle(rng, group, count)) for key, group in recorded.items()}
    bases += [next(turns[key]) for key in _cycle(rng, sorted(recorded), count - n_espeak)]
    bases = [bases[i] for i in rng.permutation(count)]
    # Latin hypercube: every trait walks its evenly spaced grid under its own permutation
    grid = lambda lo, hi: np.linspace(lo, hi, count)[rng.permutation(count)]  # noqa: E731
    pitch, formant, rate = grid(*PITCH_RANGE), grid(*FORMANT_RANGE), grid(*RATE_RANGE)
    return [Voice(base.engine, base.name, pitch_cents=int(round(pitch[i])), formant=round(float(formant[i]), 3),
                  rate=round(float(rate[i]), 3), espeak_pitch=50) for i, base in enumerate(bases)]


def _closest_same_timbre(voices: Sequence[Voice]) -> float:
    groups: Dict[str, List[Voice]] = {}
    for v in voices:
        groups.setdefault(timbre(v), []).append(v)
    return min((trait_distance(a, b) for g in groups.values() for a, b in itertools.combinations(g, 2)),
               default=math.inf)


def distinct_voices(count: int, seed: int, espeak_share: float = 0.5, tries: int = 64) -> List[Voice]:
    """``count`` speakers whose engine voice, accent, pitch, formant and rate vary independently and are well apart.

    ``espeak_share`` of them are espeak-ng voices (accents and variants each used in turn, independently),
    the others flite/festival voices, the recorded speakers behind them (:func:`timbre`: awb, rms, ked,
    kal, slt) used in turn, so no speaker repeats before all have been used. Pitch, formant and rate
    each walk an evenly spaced grid (:data:`PITCH_RANGE`, ...) under their own permutation (a Latin
    hypercube); espeak-ng's own pitch stays at its default, so ``pitch_cents`` alone sets the pitch
    offset. Of ``tries`` such layouts the one whose closest two speakers of the same timbre are
    farthest apart in :func:`trait_distance` is returned.
    """
    if count < 1:
        raise ValueError(f"distinct_voices: count must be >= 1, got {count}")
    if not 0.0 <= espeak_share <= 1.0:
        raise ValueError(f"distinct_voices: espeak_share must be in [0, 1], got {espeak_share}")
    rng = np.random.default_rng(seed)
    layouts = [_layout(rng, count, espeak_share) for _ in range(max(1, tries))]
    return max(layouts, key=_closest_same_timbre)  # first of the best on ties: deterministic


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(items: Sequence[Tuple[str, Path]], voice_name: str) -> None:
    """Say every (text, raw path) with one festival process (as text2wave would, one utterance per text)."""
    lines = [f"(voice_{voice_name})"]
    lines += [f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) {_scheme_string(str(raw))} 'riff)"
              for text, raw in items]
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        _run(["festival", "-b", script.name])
    finally:
        Path(script.name).unlink()
    missing = [str(raw) for _, raw in items if not raw.is_file()]
    if missing:
        raise RuntimeError(f"festival ({voice_name}) wrote no audio for {missing[:3]}")


def _sox_voice(raw: Path, voice: Voice, out: Path, rate: int, extra_effects: Sequence[str]) -> float:
    _run(["sox", "-R", str(raw), "-c", "1", "-b", "16", str(out), *voice.sox_effects(), *extra_effects,
          "rate", "-h", str(rate)])
    import soundfile

    info = soundfile.info(str(out))
    return info.frames / float(info.samplerate)


SynthesisJob = Tuple[str, Voice, Path, Sequence[str]]  # (text, voice, output path, extra sox effects)


def synthesize_many(jobs: Sequence[SynthesisJob], rate: int = 16000, workers: int = 2, festival_chunk: int = 40,
                    progress: Optional[Callable[[int], None]] = None) -> List[float]:
    """:func:`synthesize` for every job, ``workers`` subprocesses at a time; returns the seconds of each output.

    The output equals :func:`synthesize`'s for single-sentence texts; festival jobs of one voice share a
    festival process (``festival_chunk`` texts each) instead of paying its start-up once per clip.
    ``progress(n)`` is called as n more jobs finish.
    """
    require_programs(*sorted({ENGINE_PROGRAMS[job[1].engine] for job in jobs}), "sox")
    tasks: List[List[int]] = []
    festival: Dict[str, List[int]] = {}
    for index, (_, voice, _, _) in enumerate(jobs):
        if voice.engine == "festival":
            festival.setdefault(voice.name, []).append(index)
        else:
            tasks.append([index])
    for indices in festival.values():
        tasks += [indices[i:i + festival_chunk] for i in range(0, len(indices), festival_chunk)]
    seconds: List[float] = [0.0] * len(jobs)

    def run(task: List[int]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            raws = {i: Path(tmp) / f"raw{i}.wav" for i in task}
            first = jobs[task[0]][1]
            if first.engine == "festival":
                _festival_batch([(jobs[i][0], raws[i]) for i in task], first.name)
            else:
                _engine_wav(jobs[task[0]][0], first, raws[task[0]])
            for i in task:
                text, voice, out, effects = jobs[i]
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                seconds[i] = _sox_voice(raws[i], voice, Path(out), rate, effects)
        if progress is not None:
            progress(len(task))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(run, tasks))
    return seconds
