"""Atomic on-disk cache of built artefacts (merged checkpoints, tiny models), keyed by content hash."""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

COMPLETE_MARK = ".complete"


def content_key(material: Any) -> str:
    """A short stable hash of JSON-serialisable ``material``."""
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def is_complete(directory: Path) -> bool:
    """True when ``directory`` was fully written by :func:`build_atomically`."""
    return (Path(directory) / COMPLETE_MARK).is_file()


def build_atomically(target: Path, build: Callable[[Path], None], refresh: bool = False) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target`` in one rename; reuse a complete target.

    A killed build leaves only a temp dir beside the target (cleaned up by the next build), never a
    half-written target. A file lock serialises concurrent builders of the same target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(target) and not refresh:
            return target
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            build(tmp)
            (tmp / COMPLETE_MARK).write_text("ok\n")
            if target.exists():
                shutil.rmtree(target)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target
