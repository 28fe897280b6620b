"""The s3prl upstream contract, checked the way s3prl's own upstream tests do; shared by every family's tests.

s3prl (test/test_upstream.py) feeds ``s3prl.util.pseudo_data.get_pseudo_wavs`` — 16 kHz wavs that
*require grad* — through ``forward`` and ``backward`` for batches of 1, 2 and 3 short wavs, and builds
its ``Featurizer`` on the upstream. :func:`assert_upstream_contract` runs all of it on one upstream.
Building an upstream must also leave s3prl's seeded global state alone (:func:`assert_keeps_global_state`).
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, TypeVar

import numpy as np
import torch

from upstream_merged.core.rng import isolated_rng

SAMPLE_RATE = 16000
BATCH_SIZES = (1, 2, 3)
SHORT_SECONDS = 0.05  # the shortest wav s3prl's tests use
T = TypeVar("T")


def pseudo_wavs(n: int, seconds: float = SHORT_SECONDS, seed: int = 0) -> List[torch.Tensor]:
    """``n`` grad-requiring 16 kHz noise wavs of about ``seconds`` each, like s3prl's get_pseudo_wavs (local generator).

    Lengths differ by a few samples so a batch is padded, as in s3prl's tests.
    """
    generator = torch.Generator().manual_seed(seed)
    length = round(seconds * SAMPLE_RATE)
    return [torch.randn(length + 7 * i, generator=generator).requires_grad_() for i in range(n)]


def assert_deterministic_and_same_layers(upstream: torch.nn.Module, wavs: List[torch.Tensor]) -> None:
    """Eval mode gives identical outputs twice, and train mode returns as many hidden states as eval."""
    upstream.eval()
    with torch.no_grad():
        first, second = upstream(wavs)["hidden_states"], upstream(wavs)["hidden_states"]
    assert all(torch.equal(a, b) for a, b in zip(first, second)), "outputs differ between two eval passes"
    upstream.train()
    assert len(upstream(wavs)["hidden_states"]) == len(first), "train and eval return different layer counts"


def assert_forward_backward(upstream: torch.nn.Module, batch_sizes: Sequence[int] = BATCH_SIZES,
                            seconds: float = SHORT_SECONDS) -> None:
    """Train-mode forward + backward of grad-requiring wavs for each batch size, as s3prl's test does.

    The sum of every hidden state is backpropagated; each wav must receive a finite gradient, and when
    the upstream has trainable parameters (what ``-f`` trains) at least one must receive a non-zero one.
    """
    upstream.train()
    trainable = [p for p in upstream.parameters() if p.requires_grad]
    for n in batch_sizes:
        upstream.zero_grad(set_to_none=True)
        wavs = pseudo_wavs(n, seconds, seed=n)
        hidden = upstream(wavs)["hidden_states"]
        assert len(hidden) >= 1, "an upstream must return at least one hidden state"
        for index, state in enumerate(hidden):
            assert state.dim() == 3 and state.shape[0] == n and state.shape[1] >= 1, (
                f"hidden state {index} has shape {tuple(state.shape)} for {n} wavs; expected (B={n}, T>=1, D)")
            assert torch.isfinite(state).all(), f"hidden state {index} is not finite for a batch of {n}"
        sum(state.sum() for state in hidden).backward()
        for index, wav in enumerate(wavs):
            assert wav.grad is not None and torch.isfinite(wav.grad).all(), (
                f"wav {index} of {n} got no finite gradient: the upstream cut the wavs' graph")
        if trainable:
            assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in trainable), (
                f"no trainable parameter got a gradient for a batch of {n}: -f would train nothing")
    upstream.zero_grad(set_to_none=True)


def assert_featurizer_builds(upstream: torch.nn.Module) -> None:
    """s3prl's Featurizer builds on the upstream with the hidden width as output_dim and an integer downsample rate."""
    from s3prl.upstream.interfaces import Featurizer

    upstream.eval()
    with isolated_rng(0), torch.no_grad():  # the Featurizer probes the upstream with torch.randn
        featurizer = Featurizer(upstream, upstream_device="cpu")
        wavs = pseudo_wavs(2, seconds=0.5)
        hidden = upstream(wavs)["hidden_states"]
        features = featurizer(wavs, upstream(wavs))  # per-wav (T_i, D); s3prl checks T against samples / rate here
    rate = featurizer.downsample_rate
    assert isinstance(rate, int) and not isinstance(rate, bool) and rate > 0, f"downsample rate {rate!r} is not a positive int"
    assert rate == upstream.get_downsample_rates("hidden_states"), "Featurizer and upstream disagree on the rate"
    assert featurizer.output_dim == hidden[-1].shape[-1], (
        f"Featurizer output_dim {featurizer.output_dim} != hidden width {hidden[-1].shape[-1]}")
    assert len(features) == 2 and all(f.dim() == 2 and f.shape[-1] == featurizer.output_dim for f in features)


def assert_upstream_contract(upstream: torch.nn.Module) -> None:
    """Everything above: eval determinism, same layers in train/eval, forward+backward for n = 1, 2, 3, Featurizer."""
    assert_deterministic_and_same_layers(upstream, pseudo_wavs(2, seconds=0.3, seed=100))
    assert_forward_backward(upstream)
    assert_featurizer_builds(upstream)


@dataclass
class GlobalState:
    """What building an entry must leave untouched: the global RNGs of torch, numpy and ``random``, and os.environ."""

    torch_rng: torch.Tensor
    numpy_rng: tuple
    python_rng: tuple
    environ: Dict[str, str]

    @classmethod
    def capture(cls) -> "GlobalState":
        """The current global state."""
        return cls(torch.get_rng_state(), np.random.get_state(), random.getstate(), dict(os.environ))

    def changed(self, other: "GlobalState") -> List[str]:
        """Names of the parts that differ between two captures (empty: nothing changed)."""
        numpy_same = all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                         for a, b in zip(self.numpy_rng, other.numpy_rng))
        parts = {
            "torch RNG": torch.equal(self.torch_rng, other.torch_rng),
            "numpy RNG": numpy_same,
            "random RNG": self.python_rng == other.python_rng,
            "os.environ": self.environ == other.environ,
        }
        return [name for name, same in parts.items() if not same]


def assert_keeps_global_state(build: Callable[[], T], what: str) -> T:
    """Run ``build()`` and fail, naming the part, if it changed a global RNG state or an environment variable."""
    before = GlobalState.capture()
    result = build()
    changed = before.changed(GlobalState.capture())
    assert not changed, f"{what} changed the global {', '.join(changed)}"
    return result
