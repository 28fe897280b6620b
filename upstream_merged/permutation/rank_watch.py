"""A rank that fails ends the other ranks of a torchrun merge within seconds, not at the collective timeout.

NCCL does not wake a rank blocked in an all-reduce or barrier when a peer raises, tears its group
down or dies; that rank waits for the process group's timeout (two hours for the merge, which must
outlast rank 0's matching). :class:`RankWatch` runs beside the work on every rank, through the
group's key-value store (which does not depend on the collective backend):

- a rank whose work raises writes the error under one key before it re-raises;
- every rank beats (a counter every ``beat_seconds``); a peer whose counter stops for ``stale_seconds``
  (killed, frozen, out of memory) counts as failed, as does an unreachable store;
- a watcher thread that sees either ends its own process at once (exit code 1) after logging which
  rank failed and why. A rank that finished its part says so and is no longer watched.

Ending from a side thread skips the main thread's cleanup: a build temp dir left by rank 0 is removed
by the next build of that target (its owner pid is gone; :func:`upstream_merged.cache.build_atomically`).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Callable, Dict, Optional

logger = logging.getLogger(__name__)

PREFIX = "upstream_merged/rank_watch/"
FAILED_KEY = PREFIX + "failed"
POLL_SECONDS = 0.5
BEAT_SECONDS = 5.0
STALE_SECONDS = 300.0  # far above any pause of a live rank's Python threads (collectives and torch ops release the GIL)
PEER_FAILED_EXIT = 1


def _end_process(reason: str) -> None:
    """Log ``reason`` and end this process now (the main thread may be blocked in a collective)."""
    logger.error("%s; ending this rank", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(PEER_FAILED_EXIT)


class RankWatch:
    """Context manager: publish this rank's failure, beat, and end this process when a peer fails."""

    def __init__(self, store, rank: int, world: int, beat_seconds: float = BEAT_SECONDS,
                 stale_seconds: float = STALE_SECONDS, poll_seconds: float = POLL_SECONDS,
                 on_peer_failure: Callable[[str], None] = _end_process):
        self.store, self.rank, self.world = store, rank, world
        self.beat_seconds, self.stale_seconds, self.poll_seconds = beat_seconds, stale_seconds, poll_seconds
        self.on_peer_failure = on_peer_failure
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "RankWatch":
        self._thread = threading.Thread(target=self._watch, name=f"rank-watch-{self.rank}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if exc_type is not None:
                self.store.set(FAILED_KEY, f"rank {self.rank} failed: {exc_type.__name__}: {exc}")
            else:
                self.store.set(f"{PREFIX}done/{self.rank}", "1")
        except Exception as err:  # the store host is gone too: nothing left to tell
            logger.warning("rank %d could not publish its state to the process group's store: %s", self.rank, err)

    def _watch(self) -> None:
        peers = [r for r in range(self.world) if r != self.rank]
        seen: Dict[int, bytes] = {}
        changed = {peer: time.monotonic() for peer in peers}
        beats, next_beat = 0, 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_beat:
                    beats += 1
                    self.store.set(f"{PREFIX}beat/{self.rank}", str(beats))
                    next_beat = now + self.beat_seconds
                if self.store.check([FAILED_KEY]):
                    return self.on_peer_failure(self.store.get(FAILED_KEY).decode())
                for peer in list(peers):
                    if self.store.check([f"{PREFIX}done/{peer}"]):
                        peers.remove(peer)
                        continue
                    key = f"{PREFIX}beat/{peer}"
                    beat = self.store.get(key) if self.store.check([key]) else b""
                    if beat != seen.get(peer):
                        seen[peer], changed[peer] = beat, now
                    elif now - changed[peer] > self.stale_seconds:
                        return self.on_peer_failure(f"rank {peer} sent no heartbeat for {self.stale_seconds:g} s "
                                                    "(killed, frozen or out of memory)")
            except Exception as err:
                if self._stop.is_set():
                    return
                return self.on_peer_failure(f"the process group's store is unreachable ({err}); a peer ended")
            self._stop.wait(self.poll_seconds)
