"""Atomic on-disk cache of built artefacts (merged checkpoints, tiny models), keyed by content hash."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

logger = logging.getLogger(__name__)

COMPLETE_MARK = ".complete"


def cache_root() -> Path:
    """Root of the plugin's on-disk cache (merged models, tiny models); $UPSTREAM_MERGED_CACHE overrides."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "upstream_merged"
    return Path(os.environ.get("UPSTREAM_MERGED_CACHE", default))


def content_key(material: Any) -> str:
    """A short stable hash of JSON-serialisable ``material``."""
    blob = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def is_complete(directory: Path) -> bool:
    """True when ``directory`` was fully written by :func:`build_atomically`."""
    return (Path(directory) / COMPLETE_MARK).is_file()


class BuildTerminated(BaseException):
    """SIGTERM arrived during a build (like KeyboardInterrupt for SIGINT): unwinds so the temp dir is removed."""


# Temp dirs are named .<target>.tmp-<pid>@<host>-<random>: the owner can be checked for liveness.
_TMP_OWNER = re.compile(r"\.tmp-(\d+)@(.+)-[^-]+$")


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{os.getpid()}@{socket.gethostname()}-"


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temp_dirs(parent: Path, target: Optional[Path] = None) -> int:
    """Remove temp dirs in ``parent`` whose owner process on this host is gone (all of ``target``'s: we hold its lock)."""
    removed, host = 0, socket.gethostname()
    for stale in Path(parent).glob(".*.tmp-*"):
        if not stale.is_dir():
            continue
        mine = target is not None and stale.name.startswith(f".{target.name}.tmp-")
        owner = _TMP_OWNER.search(stale.name)
        dead = owner is not None and owner.group(2) == host and not _owner_alive(int(owner.group(1)))
        if mine or dead:
            logger.info("removing %s left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
    return removed


def _raise_terminated(signum, frame) -> None:
    raise BuildTerminated(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Inside: SIGTERM raises BuildTerminated (main thread only); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_IGN:  # the process chose to ignore SIGTERM: keep that
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_atomically(target: Path, build: Callable[[Path], None], refresh: bool = False) -> Path:
    """Run ``build(tmp_dir)`` and move the result to ``target`` in one rename; reuse a complete target.

    A build interrupted by SIGINT or SIGTERM removes its temp dir, then SIGTERM is re-delivered to the
    previous handler (default: the process ends as killed by SIGTERM). A build killed outright
    (SIGKILL, power loss) leaves its temp dir, named after its pid; the next build in the same
    directory removes it once that process is gone. A file lock serialises builders of one target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_complete(target) and not refresh:
            return target
        remove_stale_temp_dirs(target.parent, target)
        try:
            with _sigterm_unwinds():
                tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
                try:
                    build(tmp)
                    (tmp / COMPLETE_MARK).write_text("ok\n")
                    if target.exists():
                        shutil.rmtree(target)
                    os.rename(tmp, target)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
        except BuildTerminated:
            logger.warning("build of %s terminated by SIGTERM; its temp dir was removed", target)
            signal.raise_signal(signal.SIGTERM)  # the restored handler decides (default: the process ends)
            raise
    return target
