"""Scoped randomness: building or loading an entry never changes the global RNGs of torch, numpy or ``random``.

s3prl's ``run_downstream.py --seed`` seeds the global generators once and then builds the upstream,
the Featurizer and the downstream. Anything the upstream build draws from (or re-seeds) the global
state would silently change the downstream's initialisation, and differently on a cache miss than
on a cache hit. Seeded code therefore runs inside :func:`isolated_rng`.

Some forwards draw from the global generator even in eval mode (transformers' HuBERT draws one
``torch.rand([])`` per layer for LayerDrop). Code that skips such a forward (a feature cache, a memo)
replays its draws (:func:`count_rand_draws`, :func:`replay_rand_draws`) so the random stream that
follows is the one the forward would have left.
"""
from __future__ import annotations

import functools
import logging
import random
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TypeVar

import numpy as np
import torch

F = TypeVar("F", bound=Callable)
log = logging.getLogger(__name__)
MAX_REPLAYED_DRAWS = 4096  # rand([]) draws searched for when measuring a call's use of the global RNG


@contextmanager
def isolated_rng(seed: Optional[int] = None) -> Iterator[None]:
    """Run a block with the global torch (CPU, and initialised CUDA), numpy and ``random`` states restored after it.

    With ``seed``, torch's CPU generator is seeded inside the block (CUDA generators are never
    seeded here: ``torch.manual_seed`` would also queue a seed for a not-yet-initialised CUDA).
    """
    numpy_state, python_state = np.random.get_state(), random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.default_generator.manual_seed(int(seed))
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def without_global_rng_effects(fn: F) -> F:
    """Decorate ``fn`` so that calling it leaves the global RNG states as they were."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with isolated_rng():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def seeded_by_recipe(fn: F) -> F:
    """Decorate ``fn(recipe, ...)`` to run with torch seeded by ``recipe.seed`` and the global RNG states kept."""

    @functools.wraps(fn)
    def wrapper(recipe, *args, **kwargs):
        with isolated_rng(recipe.seed):
            return fn(recipe, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def count_rand_draws(call: Callable[[], object], name: str = "call") -> Optional[int]:
    """How many ``torch.rand([])`` draws ``call()`` advances torch's global CPU RNG by (None: not replayable).

    Measured twice (both must agree); the global state is left as it was.
    """
    counts = []
    saved = torch.get_rng_state()
    try:
        for _ in range(2):
            before = torch.get_rng_state()
            with torch.no_grad():
                call()
            after = torch.get_rng_state()
            torch.set_rng_state(before)
            for draws in range(MAX_REPLAYED_DRAWS + 1):
                if torch.equal(torch.get_rng_state(), after):
                    counts.append(draws)
                    break
                torch.rand([])
            else:
                counts.append(None)
            torch.set_rng_state(after)
    finally:
        torch.set_rng_state(saved)
    if counts[0] != counts[1] or counts[0] is None:
        log.warning("%s uses the global RNG in a way that cannot be replayed as rand([]) draws (%s)", name, counts)
        return None
    return counts[0]


def replay_rand_draws(draws: int) -> None:
    """Advance torch's global CPU RNG by ``draws`` ``torch.rand([])`` draws (what a skipped call would have taken)."""
    for _ in range(draws):
        torch.rand([])
