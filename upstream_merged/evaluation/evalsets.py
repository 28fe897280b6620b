"""The evaluation tasks of the small-scale evidence: which stock task reads which written set, and its domain.

The sets themselves are written by the dataset writers (``make_speech_commands.py --profile power``,
``make_voxceleb1.py --profile power``, ``make_nsynth.py --profile sampled``; docs/evalsets.md) under one
root; :func:`power_tasks` points the stock configs (``-c``) at them with the ``-o`` keys a stock run takes.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence

from upstream_merged.evaluation.validate import TaskRun

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "downstream_configs"
DOMAINS = ("speech", "music")


@dataclass(frozen=True)
class DomainTask:
    """A stock task (-d / -c / -o) and the domain it belongs to (speech | music)."""

    run: TaskRun
    domain: str

    @property
    def name(self) -> str:
        """The task's short name (ks, sid, pitch, instrument)."""
        return self.run.name


def speech_commands_task(root: Path, name: str = "ks") -> DomainTask:
    """Keyword spotting on a make_speech_commands.py output."""
    root = Path(root)
    return DomainTask(TaskRun(name, "speech_commands", str(CONFIGS / "speech_commands_cpu_small.yaml"), {
        "config.downstream_expert.datarc.speech_commands_root": str(root / "speech_commands_v0.01"),
        "config.downstream_expert.datarc.speech_commands_test_root": str(root / "speech_commands_test_set_v0.01")}),
        "speech")


# voxceleb1.yaml's (SUPERB's) crop length, 8 s: longer than every clip of the power set (at most 5 s), so
# no training clip is cut at random. The CPU config's 3 s cut a quarter of them anew on every read, and such
# crops never recur: every one missed the -f rows' frozen memo (sid was 36% of the -f cells' time).
STOCK_SID_MAX_TIMESTEP = 128000


def voxceleb1_task(root: Path, name: str = "sid", max_timestep: Optional[int] = None) -> DomainTask:
    """Speaker identification on a make_voxceleb1.py output (``max_timestep``: the training crop, samples)."""
    root = Path(root)
    overrides = {"config.downstream_expert.datarc.file_path": str(root),
                 "config.downstream_expert.datarc.meta_data": str(root / "iden_split.txt")}
    if max_timestep is not None:
        overrides["config.downstream_expert.datarc.max_timestep"] = int(max_timestep)
    return DomainTask(TaskRun(name, "voxceleb1", str(CONFIGS / "voxceleb1_cpu_small.yaml"), overrides), "speech")


def nsynth_task(root: Path, target: str, name: Optional[str] = None, max_seconds: Optional[float] = None) -> DomainTask:
    """NSynth pitch class (``target`` pitch) or instrument family (``instrument``) on a make_nsynth.py output."""
    if target not in ("pitch", "instrument"):
        raise ValueError(f"NSynth target {target!r} is not pitch or instrument")
    downstream = f"nsynth_{target}"
    overrides = {"config.downstream_expert.datarc.nsynth_root": str(root)}
    if max_seconds is not None:
        overrides["config.downstream_expert.datarc.max_seconds"] = max_seconds
    return DomainTask(TaskRun(name or target, downstream, str(CONFIGS / f"{downstream}_cpu_small.yaml"), overrides),
                      "music")


def power_tasks(root: Path, names: Optional[Sequence[str]] = None) -> List[DomainTask]:
    """The four evaluation tasks on the sets under ``root``: ks and sid (speech), pitch and instrument (music)."""
    root = Path(root)
    tasks = [speech_commands_task(root / "speech_commands"),
             voxceleb1_task(root / "voxceleb1", max_timestep=STOCK_SID_MAX_TIMESTEP),
             nsynth_task(root / "nsynth", "pitch"), nsynth_task(root / "nsynth", "instrument")]
    if names is not None:
        unknown = sorted(set(names) - {t.name for t in tasks})
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; choose from {[t.name for t in tasks]}")
        tasks = [t for t in tasks if t.name in names]
    require_data(tasks, root)
    return tasks


DATA_KEY_SUFFIXES = ("_root", "file_path", "meta_data")  # the -o keys that name data locations


def data_paths(task: DomainTask) -> List[str]:
    """The task's data locations: the values of its path overrides (roots, file lists, metadata)."""
    return [str(v) for k, v in task.run.overrides.items() if k.endswith(DATA_KEY_SUFFIXES)]


def set_identity(path: str | Path) -> str:
    """A data path named by its set's content, not its location: sha256 of the set's clips.jsonl (the writer's
    per-clip record) / the path inside the set; the path itself where no clips.jsonl is found at or up to two
    levels above it."""
    path = Path(path)
    for parent in [path, *path.parents][:3]:
        manifest = parent / "clips.jsonl"
        if manifest.is_file():
            return f"set:{_cached_sha256(str(manifest), manifest.stat().st_mtime_ns)}/{path.relative_to(parent).as_posix()}"
    return str(path)


@lru_cache(maxsize=None)
def _cached_sha256(path: str, mtime_ns: int) -> str:
    from upstream_merged.pretrained import file_sha256

    return file_sha256(Path(path))


def require_data(tasks: Sequence[DomainTask], root: Path) -> None:
    """Refuse tasks whose data paths do not exist, naming them and where the writing commands are."""
    missing = [t.name for t in tasks if not all(Path(v).exists() for v in data_paths(t))]
    if missing:
        raise SystemExit(f"{root} lacks the data of {missing}: write the evaluation sets first (docs/evalsets.md)")


# Writer arguments of the small generated sets (probe curves; the demo until 2026-12-06): clean espeak-ng speech
# and the numpy synthesizer's timbres.
SMALL_SET_ARGS = {
    "speech_commands": ["--train-speakers", "12", "--dev-speakers", "4", "--test-speakers", "24"],
    "nsynth": ["--instruments", "4", "2", "3", "--notes-per-instrument", "16"],
}
# The demo's sets: the evaluation sets' writers and profiles (several speech engines, sampled instruments, degraded
# audio, disjoint speakers / instruments), fewer speakers and notes, so the quick table measures what the full one does.
DEMO_SET_ARGS = {
    "speech_commands": ["--profile", "power", "--train-speakers", "32", "--dev-speakers", "8", "--test-speakers", "24",
                        "--workers", "2"],
    "nsynth": ["--profile", "sampled", "--notes-per-instrument", "12", "8", "16", "--workers", "2"],
}


def small_tasks(data_dir: Path) -> List[DomainTask]:
    """Small sets for the probe curves (written once under ``data_dir``): keyword spotting, NSynth pitch (1 s)."""
    return ks_and_pitch_tasks(data_dir, SMALL_SET_ARGS)


def demo_tasks(data_dir: Path) -> List[DomainTask]:
    """The quick table's tasks, written once under ``data_dir``: keyword spotting (512 / 128 / 288 clips) and NSynth
    pitch (612 / 88 / 320 notes, first second), drawn like the full evaluation sets."""
    return ks_and_pitch_tasks(data_dir, DEMO_SET_ARGS)


def ks_and_pitch_tasks(data_dir: Path, set_args: dict) -> List[DomainTask]:
    """Keyword spotting and NSynth pitch (first second) on sets written once with ``set_args[layout]``."""
    ks = written_set(data_dir, "speech_commands", set_args["speech_commands"])
    nsynth = written_set(data_dir, "nsynth", set_args["nsynth"])
    return [speech_commands_task(ks), nsynth_task(nsynth, "pitch", max_seconds=1.0)]


def written_set(data_dir: Path, layout: str, args: Sequence[str]) -> Path:
    """``python -m upstream_merged data LAYOUT OUT ARGS`` written once into data_dir/<layout>-<key>.

    The key hashes the layout module (upstream_merged/data/<layout>.py) and the arguments, not the
    synthesis library it imports, so work on that library does not regenerate a set half-way through a
    table (delete the directory to regenerate). Written into a temp directory renamed on success, so a
    failed or interrupted writer leaves nothing that looks finished.
    """
    module = REPO / "upstream_merged" / "data" / f"{layout}.py"
    if not module.is_file():
        raise ValueError(f"no dataset layout {layout!r} (upstream_merged/data/{layout}.py does not exist)")
    key = hashlib.sha256(module.read_bytes() + repr(list(args)).encode()).hexdigest()[:10]
    final = Path(data_dir) / f"{layout}-{key}"
    if final.is_dir():
        log.info("data: %s cached at %s", layout, final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("data: writing %s %s", layout, " ".join(args))
    proc = subprocess.run([sys.executable, "-m", "upstream_merged", "data", layout, str(tmp), *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"python -m upstream_merged data {layout} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")
    os.replace(tmp, final)
    return final
