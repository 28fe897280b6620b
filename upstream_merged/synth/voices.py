"""Speakers from several Debian speech engines (espeak-ng, flite, festival), shaped by sox.

A ``Voice`` is an engine voice plus four independent speaker traits applied by sox after synthesis:
pitch (cents), formant scale (vocal-tract length: ``speed`` then the opposite ``pitch``), speaking rate
(``tempo``) and, for espeak-ng, its own accent/variant. Leading and trailing silence is trimmed. Every
step is deterministic for fixed arguments (sox runs with ``-R``), so a seeded generator gives the same
audio on every machine with the same package versions.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

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
        _run(["sox", "-R", str(raw), "-c", "1", "-b", "16", str(out), *voice.sox_effects(), *extra_effects,
              "rate", "-h", str(rate)])
    import soundfile

    info = soundfile.info(str(out))
    return info.frames / float(info.samplerate)


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


def distinct_voices(count: int, seed: int) -> List[Voice]:
    """``count`` speakers whose engine voice, pitch, formant and rate are drawn independently on spread grids.

    Engines take turns; inside an engine the voice is drawn; pitch, formant and rate each walk their own
    evenly spaced grid under their own permutation, so the four traits vary independently of each other.
    """
    rng = np.random.default_rng(seed)
    pitch = np.linspace(-450, 450, count)[rng.permutation(count)]
    formant = np.linspace(0.86, 1.16, count)[rng.permutation(count)]
    rate = np.linspace(0.78, 1.32, count)[rng.permutation(count)]
    names = engine_names()
    out = []
    for i in range(count):
        engine = ENGINES[i % len(ENGINES)]
        name = names[engine][int(rng.integers(len(names[engine])))]
        out.append(Voice(engine, name, pitch_cents=int(pitch[i]), formant=round(float(formant[i]), 3),
                         rate=round(float(rate[i]), 3), espeak_pitch=int(rng.integers(20, 80))))
    return out
