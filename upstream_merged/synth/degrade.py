"""Recording conditions for evaluation audio: reverberation, a channel filter, additive noise at an SNR, level.

A :class:`Condition` is plain data (JSON-ready through :meth:`Condition.to_json`), drawn from a seeded
generator by :func:`draw_condition` under a named :data:`PROFILES` entry and applied by :func:`apply`:

1. reverberation and the channel filter with sox (``reverb``, ``sinc``), raw float32 through pipes;
2. noise made from the condition's own seed (white / pink / brown / mains hum / speech-rate modulated
   pink), scaled so that signal power over the active frames / noise power = ``snr_db``;
3. the mix scaled to ``peak_dbfs`` (level variation without clipping).

The same condition and input give the same samples on every run (sox runs with ``-R``; the noise seed
is part of the condition). The dataset writers (tools/make_speech_commands.py, make_voxceleb1.py,
make_nsynth.py) record every clip's condition beside the clip.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
CHANNELS = ("full", "telephone", "lowpass", "highpass")
# sox filters of each channel (none for "full"); "telephone" is the 300-3400 Hz band of a phone line
CHANNEL_EFFECTS: Dict[str, Tuple[str, ...]] = {"full": (), "telephone": ("sinc", "300-3400"),
                                               "lowpass": ("sinc", "-3500"), "highpass": ("sinc", "400")}


@dataclass(frozen=True)
class Condition:
    """One clip's recording condition; ``reverberance`` 0 = dry, ``noise`` "none" = no added noise."""

    reverberance: float = 0.0  # sox reverb reverberance (0-100 %)
    room_scale: float = 0.0  # sox reverb room-scale (0-100 %)
    hf_damping: float = 50.0  # sox reverb HF-damping (0-100 %)
    pre_delay_ms: float = 0.0  # sox reverb pre-delay
    channel: str = "full"  # one of CHANNELS
    noise: str = "none"  # "none" or one of NOISE_KINDS
    snr_db: Optional[float] = None  # active-signal power over noise power, when noise != "none"
    peak_dbfs: float = -1.0  # the output's peak level
    noise_seed: int = 0  # seeds the noise samples

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"Condition.channel={self.channel!r} is not one of {list(CHANNELS)}")
        if self.noise != "none" and self.noise not in NOISE_KINDS:
            raise ValueError(f"Condition.noise={self.noise!r} is not 'none' or one of {list(NOISE_KINDS)}")
        if self.noise != "none" and self.snr_db is None:
            raise ValueError("Condition.snr_db must be set when Condition.noise is not 'none'")
        if self.peak_dbfs > 0:
            raise ValueError(f"Condition.peak_dbfs={self.peak_dbfs} would clip; use a value <= 0")

    @property
    def is_clean(self) -> bool:
        """True when nothing but the level is changed."""
        return self.reverberance == 0 and self.channel == "full" and self.noise == "none"

    def to_json(self) -> dict:
        """The condition as a flat JSON object (what the writers record per clip)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Condition":
        """The inverse of :meth:`to_json`."""
        return cls(**data)


@dataclass(frozen=True)
class Profile:
    """How conditions are drawn: probabilities and uniform ranges of every effect."""

    p_reverb: float
    reverberance: Tuple[float, float]
    room_scale: Tuple[float, float]
    p_noise: float
    snr_db: Tuple[float, float]
    peak_dbfs: Tuple[float, float]
    channels: Tuple[Tuple[str, float], ...] = (("full", 1.0),)
    noises: Tuple[str, ...] = NOISE_KINDS


PROFILES: Dict[str, Profile] = {
    # no effect at all: the level stays at -1 dBFS
    "clean": Profile(0.0, (0, 0), (0, 0), 0.0, (0, 0), (-1.0, -1.0)),
    # training audio: often mild, sometimes clean, so a probe sees varied but easy conditions
    "train": Profile(0.5, (10, 50), (10, 60), 0.6, (15, 40), (-20, -1),
                     (("full", 0.85), ("lowpass", 0.1), ("highpass", 0.05))),
    # test audio: always noisy, mostly reverberant, every channel, a wide level range
    "test": Profile(0.8, (20, 90), (30, 100), 1.0, (0, 20), (-30, -1),
                    (("full", 0.55), ("telephone", 0.15), ("lowpass", 0.15), ("highpass", 0.15))),
    # music notes: milder noise than speech (a pitch label must survive), same rooms and levels
    "music_train": Profile(0.4, (10, 50), (10, 60), 0.5, (20, 40), (-20, -1)),
    "music_test": Profile(0.7, (20, 80), (30, 100), 1.0, (10, 30), (-30, -1),
                          (("full", 0.7), ("lowpass", 0.15), ("highpass", 0.15))),
    # pretraining inputs (tools/pretrain_small.py --degrade): WavLM-style denoising, from clean to harsh
    "pretrain": Profile(0.6, (10, 90), (10, 100), 0.8, (0, 30), (-30, -1),
                        (("full", 0.6), ("telephone", 0.1), ("lowpass", 0.15), ("highpass", 0.15))),
}


def draw_condition(rng: np.random.Generator, profile: str | Profile) -> Condition:
    """One condition drawn from ``profile`` (a name in :data:`PROFILES` or a :class:`Profile`)."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(f"degrade profile {profile!r} is not one of {list(PROFILES)}")
        profile = PROFILES[profile]
    # every draw happens whatever the outcome, so one field's probability never shifts the others
    reverb_on, noise_on = rng.random() < profile.p_reverb, rng.random() < profile.p_noise
    reverberance = float(rng.uniform(*profile.reverberance))
    room_scale = float(rng.uniform(*profile.room_scale))
    hf_damping, pre_delay = float(rng.uniform(20, 80)), float(rng.uniform(0, 30))
    names, weights = zip(*profile.channels)
    channel = names[int(rng.choice(len(names), p=np.asarray(weights) / sum(weights)))]
    noise = profile.noises[int(rng.integers(len(profile.noises)))]
    snr = float(rng.uniform(*profile.snr_db))
    peak = float(rng.uniform(*profile.peak_dbfs))
    seed = int(rng.integers(2**31))
    return Condition(
        reverberance=round(reverberance, 1) if reverb_on else 0.0,
        room_scale=round(room_scale, 1) if reverb_on else 0.0,
        hf_damping=round(hf_damping, 1), pre_delay_ms=round(pre_delay, 1) if reverb_on else 0.0,
        channel=channel, noise=noise if noise_on else "none", snr_db=round(snr, 2) if noise_on else None,
        peak_dbfs=round(peak, 2), noise_seed=seed)


def jitter(condition: Condition, rng: np.random.Generator, snr_db: float = 3.0, peak_db: float = 3.0) -> Condition:
    """The same room and channel with the SNR, level and noise seed varied a little (clips of one recording)."""
    snr = None if condition.snr_db is None else round(condition.snr_db + float(rng.uniform(-snr_db, snr_db)), 2)
    peak = round(min(-0.5, condition.peak_dbfs + float(rng.uniform(-peak_db, peak_db))), 2)
    return replace(condition, snr_db=snr, peak_dbfs=peak, noise_seed=int(rng.integers(2**31)))


def _sox_float(audio: np.ndarray, rate: int, effects: Tuple[str, ...]) -> np.ndarray:
    """Run sox ``effects`` on mono float32 samples through pipes (same length out as in)."""
    if shutil.which("sox") is None:
        raise RuntimeError("sox is not installed; `apt-get install -y sox` (tools/setup_env.sh does)")
    fmt = ["-t", "f32", "-r", str(rate), "-c", "1"]
    cmd = ["sox", "-R", *fmt, "-", *fmt, "-", *effects]
    result = subprocess.run(cmd, input=np.ascontiguousarray(audio, dtype="<f4").tobytes(), capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"sox failed ({' '.join(cmd)}): {result.stderr.decode(errors='replace').strip()[:300]}")
    out = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    return np.pad(out[: len(audio)], (0, max(0, len(audio) - len(out))))


def make_noise(kind: str, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-RMS noise of ``kind`` (one of :data:`NOISE_KINDS`)."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind {kind!r} is not one of {list(NOISE_KINDS)}")
    if kind == "hum":  # mains hum: 50 or 60 Hz with decaying harmonics, plus a little hiss
        base = 50.0 if rng.random() < 0.5 else 60.0
        t = np.arange(n) / rate
        x = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
                for k in range(1, 8))
        x = x + 0.05 * rng.standard_normal(n)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1.0 / rate)
        slope = {"white": 0.0, "pink": 0.5, "brown": 1.0, "babble": 0.5}[kind]
        spectrum = spectrum / np.maximum(freqs, 20.0) ** slope
        x = np.fft.irfft(spectrum, n)
        if kind == "babble":  # pink noise with a syllable-rate (3-6 Hz) loudness contour, like distant chatter
            t = np.arange(n) / rate
            envelope = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 2 * np.pi))
            x = x * envelope * (1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    x = np.asarray(x, dtype=np.float64)
    rms = float(np.sqrt(np.mean(x**2)))
    return (x / rms if rms > 0 else x).astype(np.float32)


def active_power(audio: np.ndarray, rate: int, floor_db: float = 30.0) -> float:
    """Mean power over the 20 ms frames within ``floor_db`` of the loudest one (the signal, not its pauses)."""
    hop = max(1, rate // 50)
    frames = len(audio) // hop
    if frames == 0:
        return float(np.mean(audio.astype(np.float64) ** 2))
    power = np.mean(audio[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1)
    loud = power >= power.max() * 10 ** (-floor_db / 10)
    return float(power[loud].mean())


def apply(audio: np.ndarray, rate: int, condition: Condition) -> np.ndarray:
    """``audio`` (mono float) recorded under ``condition``: same length, peak at ``condition.peak_dbfs``."""
    x = np.asarray(audio, dtype=np.float32)
    effects: Tuple[str, ...] = ()
    if condition.reverberance > 0:
        effects += ("reverb", f"{condition.reverberance:g}", f"{condition.hf_damping:g}", f"{condition.room_scale:g}",
                    "100", f"{condition.pre_delay_ms:g}", "0")
    effects += CHANNEL_EFFECTS[condition.channel]
    if effects:
        peak = float(np.max(np.abs(x))) or 1.0
        x = _sox_float(x / peak * 0.5, rate, effects)  # headroom: reverb adds energy
    if condition.noise != "none":
        signal = active_power(x, rate)
        noise = make_noise(condition.noise, len(x), rate, np.random.default_rng(condition.noise_seed))
        x = x + noise * np.float32(np.sqrt(signal / 10 ** (condition.snr_db / 10)))
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x = x * np.float32(10 ** (condition.peak_dbfs / 20) / peak)
    return x.astype(np.float32)


def degrade_file(src: Path, dst: Path, condition: Condition, tail_seconds: float = 0.0) -> None:
    """Read ``src``, apply ``condition`` (``tail_seconds`` of silence appended first for the reverb tail), write 16-bit ``dst``."""
    import soundfile

    audio, rate = soundfile.read(str(src), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    if tail_seconds > 0 and condition.reverberance > 0:
        audio = np.pad(audio, (0, int(tail_seconds * rate)))
    soundfile.write(str(dst), apply(audio, rate, condition), rate, subtype="PCM_16")


def write_conditions(rows: list, path: Path) -> None:
    """Write per-clip rows (each with a ``condition``) as sorted JSON lines, atomically."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    tmp.replace(path)


def read_conditions(path: Path) -> list:
    """The rows :func:`write_conditions` wrote."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
