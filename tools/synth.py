"""Speech synthesis with espeak-ng + sox, shared by the synthetic dataset tools."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence, Tuple

VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = ["", "+m1", "+m3", "+f2", "+f4", "+klatt", "+m7", "+f1"]


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
        """A deterministic, distinct speaker for each index."""
        voice = VOICES[index % len(VOICES)] + VARIANTS[(index // len(VOICES)) % len(VARIANTS)]
        return Speaker(voice=voice, pitch=30 + (index * 17) % 50, speed=140 + (index * 23) % 60)


def _run(cmd: list[str]) -> None:
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


def stable_id(material: str, length: int, alphabet: str = "0123456789abcdef") -> str:
    """A deterministic pseudo-random id of ``length`` characters from ``alphabet`` (sha256 of ``material``)."""
    number = int(hashlib.sha256(material.encode()).hexdigest(), 16)
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(chars)


@contextmanager
def atomic_output_dir(out: Path) -> Iterator[Path]:
    """Yield a temp dir next to ``out`` and rename it to ``out`` on success; nothing is left on error.

    Refuses a non-empty ``out`` (an empty one is replaced).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"output directory {out} is not empty; remove it or choose another")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def synthesize_all(jobs: Sequence[Tuple[str, Speaker, Path, tuple]], workers: int) -> None:
    """Run :func:`speak` for every (text, speaker, path, sox effects) job, ``workers`` at a time."""
    for job in jobs:
        job[2].parent.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(lambda job: speak(job[0], job[1], job[2], sox_effects=job[3]), jobs))


def tool_main(build: Callable[[], object], out: Path) -> int:
    """Run a dataset builder for a CLI: missing programs and a non-empty output become exit code 2."""
    try:
        build()
    except (FileExistsError, RuntimeError) as err:  # incl. ToolMissingError
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
