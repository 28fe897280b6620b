"""Synthetic speech with espeak-ng + sox: speakers, a seeded sentence generator and a corpus writer.

Everything is deterministic for a given seed: espeak-ng is deterministic for fixed arguments and sox
runs with ``-R`` (repeatable dither). The dataset tools (tools/synth.py and its users) share the
``Speaker`` / ``speak`` helpers defined here.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, List, Sequence

import numpy as np

from upstream_merged.synth.voices import Voice, random_voice, synthesize

logger = logging.getLogger(__name__)

# Speaker.from_index enumerates these two lists; keep their order (the small datasets depend on it).
VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = ["", "+m1", "+m3", "+f2", "+f4", "+klatt", "+m7", "+f1"]
# The pretraining corpus draws from a wider set (all offline espeak-ng voices and variants).
CORPUS_VOICES = VOICES + ["en-gb-x-gbclan", "en-gb-x-gbcwmd"]
CORPUS_VARIANTS = VARIANTS + ["+m2", "+m4", "+m5", "+m6", "+f3", "+f5", "+klatt2", "+klatt3", "+croak", "+whisper"]

_WORDS = {
    "det": ["the", "a", "every", "some", "this", "that", "my", "our", "your", "one"],
    "adj": ["red", "green", "small", "large", "quiet", "loud", "old", "young", "bright", "dark", "happy", "tired",
            "quick", "slow", "warm", "cold", "heavy", "empty", "clever", "gentle", "strange", "simple", "wooden",
            "silver", "narrow", "broken", "famous", "hidden"],
    "noun": ["dog", "cat", "house", "river", "teacher", "garden", "window", "letter", "city", "mountain", "child",
             "doctor", "engine", "table", "story", "forest", "market", "bridge", "island", "kitchen", "farmer",
             "painter", "station", "number", "picture", "morning", "question", "machine", "flower", "captain",
             "bottle", "signal", "village", "student", "orange", "rabbit", "pencil", "ocean", "winter", "music"],
    "verb": ["sees", "finds", "carries", "opens", "follows", "remembers", "paints", "builds", "watches", "pulls",
             "moves", "cleans", "likes", "answers", "reaches", "covers", "visits", "counts", "fixes", "holds"],
    "verb_inf": ["see", "find", "carry", "open", "follow", "paint", "build", "watch", "move", "clean", "visit",
                 "count", "fix", "hold", "close", "bring", "read", "call"],
    "adv": ["slowly", "quickly", "carefully", "again", "today", "quietly", "often", "never", "always", "later"],
    "prep": ["near", "behind", "under", "over", "beside", "inside", "across", "past", "toward", "around"],
    "num": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twenty",
            "forty", "hundred"],
    "name": ["anna", "peter", "maria", "john", "lucy", "david", "sara", "tom", "helen", "mark", "emma", "paul"],
    "cmd": ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "wait", "start", "open", "close"],
}
_TEMPLATES = [
    "det adj noun verb det noun",
    "det noun verb det adj noun prep det noun",
    "name verb det noun adv",
    "det adj adj noun verb prep det noun",
    "does det noun verb det noun ?",
    "please verb_inf det adj noun",
    "name and name verb det num noun",
    "det noun prep det noun verb adv",
    "num num num num",
    "why does name verb_inf det noun prep det noun ?",
]


class ToolMissingError(RuntimeError):
    """espeak-ng or sox is not installed."""


def require_tools(*names: str) -> None:
    """Fail with the install command when a needed program is absent."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise ToolMissingError(
            f"missing program(s): {', '.join(missing)}; install them with `apt-get install -y espeak-ng sox`"
        )


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an espeak-ng voice+variant with its own pitch and speed."""

    voice: str
    pitch: int
    speed: int

    @staticmethod
    def from_index(index: int) -> "Speaker":
        """A deterministic speaker per index, kept only so that the existing small sets stay byte-identical.

        The speakers are poorly spread: pitch ``30 + 17*index mod 50`` gives consecutive indices only
        three pitch clusters (16 speakers: 30-35, 47-51, 64-68), the variant follows the index in steps
        of six, and ``speak`` trims no silence unless the caller's sox effects do. New evaluation sets
        use :func:`upstream_merged.synth.voices.distinct_voices` / ``random_voice`` instead.
        """
        voice = VOICES[index % len(VOICES)] + VARIANTS[(index // len(VOICES)) % len(VARIANTS)]
        return Speaker(voice=voice, pitch=30 + (index * 17) % 50, speed=140 + (index * 23) % 60)

    @staticmethod
    def random(rng: np.random.Generator) -> "Speaker":
        """A speaker drawn from the corpus voices, variants, pitches (15-85) and speeds (110-230 wpm)."""
        voice = str(rng.choice(CORPUS_VOICES)) + str(rng.choice(CORPUS_VARIANTS))
        return Speaker(voice=voice, pitch=int(rng.integers(15, 86)), speed=int(rng.integers(110, 231)))


def _run(cmd: List[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"command failed ({' '.join(cmd)}): {result.stderr.strip()[:300]}")


def speak(text: str, speaker: Speaker, out: Path, rate: int = 16000, sox_effects: tuple = ()) -> None:
    """Synthesize ``text`` to a mono 16-bit wav (or flac, by suffix) at ``rate``, then apply sox effects."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        _run(["espeak-ng", "-v", speaker.voice, "-s", str(speaker.speed), "-p", str(speaker.pitch), "-w", str(raw), text])
        _run(["sox", "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out), *sox_effects])


def noise(out: Path, seconds: float, kind: str = "whitenoise", volume: float = 0.1, rate: int = 16000) -> None:
    """Write a noise clip with sox's synth (deterministic for a given kind/length)."""
    _run(["sox", "-R", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(out), "synth", str(seconds), kind, "vol", str(volume)])


def sentence(rng: np.random.Generator) -> str:
    """One seeded sentence from the word lists and templates (questions end with '?')."""
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))].split()
    words = [str(rng.choice(_WORDS[slot])) if slot in _WORDS else slot for slot in template]
    text = " ".join(w for w in words if w != "?")
    return text + ("?" if template[-1] == "?" else ".")


def word_list(rng: np.random.Generator, n: int) -> str:
    """``n`` isolated words (commands, numbers, nouns) separated by pauses."""
    pools = ("cmd", "num", "noun", "name", "adj")
    return ", ".join(str(rng.choice(_WORDS[pools[int(rng.integers(len(pools)))]])) for _ in range(n))


@dataclass(frozen=True)
class Utterance:
    """One corpus item: what is said, by whom, and the sox gain applied."""

    text: str
    kind: str  # "sentence" or "words"
    voice: str
    pitch: int
    speed: int
    gain_db: float


def utterances(seed: int) -> Iterator[Utterance]:
    """An endless, seeded stream of utterances: 1-3 sentences (75%) or 2-6 isolated words (25%)."""
    rng = np.random.default_rng(seed)
    while True:
        speaker = Speaker.random(rng)
        if rng.random() < 0.75:
            text, kind = " ".join(sentence(rng) for _ in range(int(rng.integers(1, 4)))), "sentence"
        else:
            text, kind = word_list(rng, int(rng.integers(2, 7))), "words"
        yield Utterance(text, kind, speaker.voice, speaker.pitch, speaker.speed, round(float(rng.uniform(-12, 0)), 1))


def render_utterance(utt: Utterance, out: Path, rate: int = 16000) -> float:
    """Write ``utt`` as a 16-bit mono wav at ``rate`` (normalised, gain applied); returns its seconds."""
    speaker = Speaker(utt.voice, utt.pitch, utt.speed)
    speak(utt.text, speaker, out, rate, sox_effects=("norm", "-1", "gain", str(utt.gain_db)))
    return _wav_seconds(out)


@dataclass(frozen=True)
class VoicedUtterance:
    """One multi-engine corpus item: what is said, the speaker (engine voice + sox traits) and the gain."""

    text: str
    kind: str  # "sentence" or "words"
    voice: Voice
    gain_db: float

    def labels(self) -> dict:
        """Flat JSON labels: text, kind, engine, voice name, accent and the speaker traits."""
        v = self.voice
        return {"text": self.text, "kind": self.kind, "engine": v.engine, "voice": v.name, "accent": v.accent,
                "pitch_cents": v.pitch_cents, "formant": v.formant, "rate": v.rate, "espeak_pitch": v.espeak_pitch,
                "gain_db": self.gain_db}


def voiced_utterances(seed: int) -> Iterator[VoicedUtterance]:
    """An endless, seeded stream over espeak-ng, flite and festival speakers (same text mix as ``utterances``)."""
    rng = np.random.default_rng(seed)
    while True:
        voice = random_voice(rng)
        if rng.random() < 0.75:
            text, kind = " ".join(sentence(rng) for _ in range(int(rng.integers(1, 4)))), "sentence"
        else:
            text, kind = word_list(rng, int(rng.integers(2, 7))), "words"
        yield VoicedUtterance(text, kind, voice, round(float(rng.uniform(-12, 0)), 1))


def render_voiced(utt: VoicedUtterance, out: Path, rate: int = 16000) -> float:
    """Write ``utt`` as a 16-bit mono wav at ``rate`` (silence trimmed, normalised, gain); returns its seconds."""
    return synthesize(utt.text, utt.voice, out, rate, extra_effects=("norm", "-1", "gain", str(utt.gain_db)))


def _wav_seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / float(info.samplerate)


def write_speech_corpus(out: Path, minutes: float, seed: int = 0, rate: int = 16000,
                        heldout_share: float = 0.05, workers: int = 2, engines: str = "espeak") -> List[dict]:
    """Write utterances into ``out``/speech/ until ``minutes`` of audio exist; returns the manifest rows.

    ``engines``: "espeak" (espeak-ng voices, as the first shipped encoders) or "all" (espeak-ng, flite and
    festival speakers with independent pitch / formant / rate, ``voiced_utterances``). Every
    ``round(1/heldout_share)``-th utterance is marked ``split: heldout`` (for evaluation).
    """
    if engines not in ("espeak", "all"):
        raise ValueError(f"engines={engines!r} is not 'espeak' or 'all'")
    require_tools("espeak-ng", "sox")
    render = render_utterance if engines == "espeak" else render_voiced
    labels = asdict if engines == "espeak" else VoicedUtterance.labels
    folder = Path(out) / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    every = max(2, round(1 / heldout_share)) if heldout_share > 0 else 0
    rows: List[dict] = []
    total = 0.0
    stream = enumerate(utterances(seed) if engines == "espeak" else voiced_utterances(seed))
    with ThreadPoolExecutor(max_workers=workers) as pool:  # espeak-ng/sox run as subprocesses
        while total < minutes * 60:
            chunk = [next(stream) for _ in range(16)]
            paths = [folder / f"speech_{index:05d}.wav" for index, _ in chunk]
            durations = list(pool.map(lambda item: render(item[0][1], item[1], rate), zip(chunk, paths)))
            for (index, utt), path, seconds in zip(chunk, paths, durations):
                if total >= minutes * 60:  # same cut-off as a sequential run: the corpus does not depend on workers
                    path.unlink()
                    continue
                total += seconds
                split = "heldout" if every and index % every == every - 1 else "train"
                rows.append({"path": str(path.relative_to(out)), "domain": "speech", "seconds": round(seconds, 4),
                             "split": split, "labels": labels(utt)})
    logger.info("speech corpus: %d utterances, %.1f min in %s", len(rows), total / 60, folder)
    return rows


def write_manifest(rows: Sequence[dict], path: Path) -> None:
    """Write manifest rows as JSON lines (atomically)."""
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))
    tmp.replace(path)
