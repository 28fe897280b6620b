"""What the dataset layouts share: espeak-ng + sox speech, all-or-nothing output dirs, a thread pool, progress, summaries."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, TypeVar

# The espeak-ng helpers live in upstream_merged.synth (the pretraining corpus and calibration sets use them too);
# the layouts take them from here.
from upstream_merged.synth.speech import Speaker, noise, require_tools, speak  # noqa: F401


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


T = TypeVar("T")
R = TypeVar("R")


def pool_map(fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str, quiet: bool = False) -> List[R]:
    """``[fn(item) for item in items]`` on ``workers`` threads (the work runs in subprocesses) with a tqdm bar."""
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="clip", disable=quiet, mininterval=2.0))


def synthesize_voices(jobs: Sequence[Tuple[str, object]], folder: Path, rate: int, workers: int, desc: str,
                      quiet: bool = False) -> List[Path]:
    """Speak every (text, ``voices.Voice``) job into ``folder``/<index>.wav, with a tqdm bar; return the paths in order."""
    from tqdm import tqdm

    from upstream_merged.synth.voices import synthesize_many

    paths = [Path(folder) / f"{index}.wav" for index in range(len(jobs))]
    with tqdm(total=len(jobs), desc=desc, unit="clip", disable=quiet, mininterval=2.0) as bar:
        synthesize_many([(text, voice, path, ()) for (text, voice), path in zip(jobs, paths)], rate, workers,
                        progress=bar.update)
    return paths


def overlaps(groups: Dict[str, Iterable[str]]) -> Dict[str, int]:
    """How many members each pair of splits shares, e.g. {"train&test": 0, ...} (0 everywhere = disjoint)."""
    sets = {name: set(members) for name, members in groups.items()}
    names = sorted(sets)
    return {f"{a}&{b}": len(sets[a] & sets[b]) for i, a in enumerate(names) for b in names[i + 1:]}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented, key-sorted JSON (atomically, parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
