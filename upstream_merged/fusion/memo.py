"""An on-disk memo of frozen backbones' hidden states, one file per (backbone, clip).

A fusion upstream trains only its interface: the backbones are frozen, so a stock ``-f`` run forwards
the same training clips through them every epoch and the same dev clips at every evaluation. With
``UPSTREAM_MERGED_FROZEN_MEMO=DIR`` set, each backbone forwards a clip once (alone, unpadded) and
later batches read its hidden states from DIR, shared by every run, seed and fusion entry that uses
the same backbone weights.

``UPSTREAM_MERGED_FROZEN_MEMO_STORE_AFTER=N`` (default 1) stores a clip only from its N-th forward on,
counted in a small ``.seen`` file beside where the clip would go, so across every process that shares the
memo: with N = 2 the random crops a stock dataset draws anew each read (voxceleb1's ``max_timestep`` crops
of training utterances, speech_commands' ``_silence_`` cuts) leave only a counter file of a few bytes, while clips
that recur (the dev set, uncropped training clips) are stored at their second sighting, even when that is
in the next seed's run (a 500-step run at batch 8 reads each NSynth training clip at most once).

What a batch gets: every clip's hidden states as that clip forwarded alone, zero-padded to the
longest clip's frames. On a batch of equal-length clips that equals the batched forward (to float
rounding). On a padded batch the valid frames of a layer-norm backbone are equal too; a group-norm
CNN (HuBERT base and the small encoders) normalises over the padded input, so there each clip gets
the features it has alone, no longer those its batch mates' padding gives it. The frames past a
clip's end are zeros instead of the padding's outputs; s3prl's heads pool over valid frames only.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from upstream_merged.core.atomic import write_atomically, write_text_atomically

logger = logging.getLogger(__name__)

MEMO_ENV = "UPSTREAM_MERGED_FROZEN_MEMO"
STORE_AFTER_ENV = "UPSTREAM_MERGED_FROZEN_MEMO_STORE_AFTER"
FORMAT_VERSION = 1


class FrozenMemo:
    """Hidden states (layers, frames, width) of one clip through one frozen backbone, keyed by content."""

    def __init__(self, directory: str | Path, store_after: int = 1):
        if isinstance(store_after, bool) or not isinstance(store_after, int) or store_after < 1:
            raise ValueError(f"{STORE_AFTER_ENV}={store_after!r}: expected a whole number >= 1")
        path = Path(directory).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{MEMO_ENV}={directory}: exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(f"{MEMO_ENV}={directory}: cannot create the memo directory ({err})") from None
        if not os.access(path, os.W_OK):
            raise ValueError(f"{MEMO_ENV}={directory}: the memo directory is not writable")
        self.directory = path
        self.store_after = store_after
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_env(cls) -> Optional["FrozenMemo"]:
        """The memo ``UPSTREAM_MERGED_FROZEN_MEMO`` names, or None when it is unset or empty."""
        directory = os.environ.get(MEMO_ENV, "").strip()
        if not directory:
            return None
        raw = os.environ.get(STORE_AFTER_ENV, "1").strip() or "1"
        try:
            store_after = int(raw)
        except ValueError:
            raise ValueError(f"{STORE_AFTER_ENV}={raw!r}: expected a whole number >= 1") from None
        return cls(directory, store_after)

    def clip_key(self, backbone_key: str, wav: torch.Tensor) -> str:
        """sha256 over the backbone's key and the clip's dtype, length and sample bytes."""
        samples = wav.detach().to("cpu").contiguous()
        digest = hashlib.sha256(f"{FORMAT_VERSION}|{backbone_key}|{samples.dtype}|{tuple(samples.shape)}\n".encode())
        digest.update(samples.reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def load(self, key: str) -> Optional[np.ndarray]:
        """The stored (layers, frames, width) array, or None."""
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        self.hits += 1
        return np.load(path)

    def store(self, key: str, states: np.ndarray) -> bool:
        """Write atomically once the clip reached ``store_after`` forwards (any process); True if written."""
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        if self.store_after > 1:
            counter = path.with_suffix(".seen")
            seen = self._sightings(counter) + 1
            if seen < self.store_after:
                write_text_atomically(counter, str(seen))
                return False
            counter.unlink(missing_ok=True)
        write_atomically(path, lambda temp: np.save(temp, states))
        return True

    @staticmethod
    def _sightings(counter: Path) -> int:
        # Two processes may both count one sighting: that only stores a clip one read early or late.
        try:
            return int(counter.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0


def pad_clips(states: List[torch.Tensor]) -> List[torch.Tensor]:
    """[(layers, frames_i, width)] per clip -> the backbone's per-layer (B, max frames, width), zero-padded."""
    layers, _, width = states[0].shape
    frames = max(s.shape[1] for s in states)
    batch = states[0].new_zeros(len(states), layers, frames, width)
    for row, clip in enumerate(states):
        batch[row, :, :clip.shape[1]] = clip
    return list(batch.unbind(dim=1))
