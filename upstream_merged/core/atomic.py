"""Files written whole or not at all: through a temp file beside the target, then one rename.

Readers (another worker, a resumed run, a user's ``cat``) see the old file or the new one, never a
half-written one; a failed write leaves no temp file behind. Directories are built the same way by
:func:`upstream_merged.cache.build_atomically`.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def temp_path_beside(path: PathLike) -> Path:
    """A fresh hidden name in ``path``'s directory that keeps its suffix (np.save and savefig read it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def write_atomically(path: PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temp)`` for a temp path beside ``path``, then rename it onto ``path``; the temp goes on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_beside(path)
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: PathLike, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    return write_atomically(path, lambda temp: temp.write_text(text))
