"""isolated_rng: seeded blocks that leave the global torch, numpy and random states as they were."""
import random

import numpy as np
import pytest
import torch

from upstream_merged.core.rng import (count_rand_draws, isolated_rng, replay_rand_draws, seeded_by_recipe,
                                      without_global_rng_effects)
from upstream_merged.testing.contract import GlobalState


def _draw_everywhere():
    return torch.rand(3), np.random.rand(2), random.random()


def test_block_draws_and_seeds_without_moving_global_state():
    before = GlobalState.capture()
    with isolated_rng(3):
        seeded = torch.rand(4)
        _draw_everywhere()
        np.random.seed(1)
        random.seed(1)
    assert before.changed(GlobalState.capture()) == []
    assert torch.equal(seeded, torch.rand(4, generator=torch.Generator().manual_seed(3)))


def test_state_restored_when_the_block_raises():
    before = GlobalState.capture()
    with pytest.raises(RuntimeError):
        with isolated_rng(0):
            _draw_everywhere()
            raise RuntimeError("boom")
    assert before.changed(GlobalState.capture()) == []


def test_decorators():
    class Recipe:
        seed = 11

    @seeded_by_recipe
    def build(recipe):
        _draw_everywhere()
        return torch.rand(2)

    @without_global_rng_effects
    def load():
        return _draw_everywhere()

    before = GlobalState.capture()
    first, second = build(Recipe()), build(Recipe())
    load()
    assert torch.equal(first, second)
    assert before.changed(GlobalState.capture()) == []


def test_count_rand_draws_measures_a_call_and_replay_reproduces_its_stream():
    torch.manual_seed(5)
    state = torch.get_rng_state()
    assert count_rand_draws(lambda: [torch.rand([]) for _ in range(3)]) == 3
    assert torch.equal(torch.get_rng_state(), state)  # measuring leaves the global state alone
    [torch.rand([]) for _ in range(3)]
    after_call = torch.rand(4)
    torch.set_rng_state(state)
    replay_rand_draws(3)
    assert torch.equal(torch.rand(4), after_call)


def test_count_rand_draws_is_none_for_a_call_whose_draws_vary():
    calls = []

    def varying():
        calls.append(1)
        for _ in range(len(calls)):
            torch.rand([])

    state = torch.get_rng_state()
    assert count_rand_draws(varying) is None
    assert torch.equal(torch.get_rng_state(), state)
