"""Frozen parts leave the state dict as a fingerprint; strict loads accept the small state and refuse other frozen parts."""
import json

import pytest
import torch
from torch import nn

from upstream_merged.upstream.frozen_state import (
    FINGERPRINT_KEY,
    FrozenStateMismatch,
    decode_fingerprint,
    keep_frozen_out_of_state_dict,
)


class Toy(nn.Module):
    """A frozen 'body' (two tensors and a buffer) and a trainable 'head'."""

    def __init__(self, seed: int = 0, width: int = 4):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.body, self.head = nn.Linear(width, width), nn.Linear(width, 2)
        self.body.register_buffer("scale", torch.ones(width))
        with torch.no_grad():  # every value from the local generator (nn.Linear's own init uses the global RNG)
            for tensor in (*self.body.parameters(), *self.head.parameters()):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
        self.body.requires_grad_(False)
        keep_frozen_out_of_state_dict(self, lambda key: "body" if key.startswith("body.") else None,
                                      kind="backbone", owner="toy entry")


def _full_state(toy: Toy) -> dict:
    """What the state dict held before: every tensor, no fingerprint."""
    return {**{f"body.{k}": v for k, v in toy.body.state_dict().items()},
            **{f"head.{k}": v for k, v in toy.head.state_dict().items()}}


def test_state_dict_holds_trainable_tensors_and_fingerprint_only():
    state = Toy().state_dict()
    assert set(state) == {"head.weight", "head.bias", FINGERPRINT_KEY}
    assert all(torch.is_tensor(value) for value in state.values())  # safe for safetensors / weights_only loads
    digest = decode_fingerprint(state[FINGERPRINT_KEY], "test")["body"]
    assert (digest.tensors, digest.parameters) == (3, 16 + 4 + 4)
    assert torch.equal(Toy().state_dict()[FINGERPRINT_KEY], state[FINGERPRINT_KEY])  # deterministic


def test_strict_round_trip_and_nesting_under_a_prefix():
    trained, rebuilt = Toy(), Toy()
    with torch.no_grad():
        trained.head.weight.add_(1.0)
    assert not rebuilt.load_state_dict(trained.state_dict(), strict=True).missing_keys
    assert torch.equal(rebuilt.head.weight, trained.head.weight)
    outer, other = nn.Sequential(Toy()), nn.Sequential(Toy(seed=1))
    assert set(outer.state_dict()) == {"0.head.weight", "0.head.bias", f"0.{FINGERPRINT_KEY}"}
    nn.Sequential(Toy()).load_state_dict(outer.state_dict(), strict=True)
    with pytest.raises(FrozenStateMismatch, match="backbone 'body' has the same tensor names and shapes"):
        other.load_state_dict(outer.state_dict())


def test_other_frozen_weights_or_architecture_are_refused_by_name():
    state = Toy().state_dict()
    with pytest.raises(FrozenStateMismatch, match="toy entry refuses .*backbone 'body' has the same tensor names and "
                                                  "shapes but different weights"):
        Toy(seed=1).load_state_dict(state)
    with pytest.raises(FrozenStateMismatch, match=r"backbone 'body' has another architecture \(checkpoint: 3 tensors, "
                                                  r"24 values; here: 3 tensors, 35 values\)"):
        toy = Toy(width=5)
        toy.head = nn.Linear(4, 2)  # keep the head loadable: only the body differs
        toy.load_state_dict(state)


def test_tampered_or_missing_fingerprint_is_refused():
    state = Toy().state_dict()
    text = bytes(state[FINGERPRINT_KEY].tolist()).decode()
    data = json.loads(text)
    data["parts"]["body"]["values"] = "0" * 64
    tampered = {**state, FINGERPRINT_KEY: torch.tensor(list(json.dumps(data).encode()), dtype=torch.uint8)}
    with pytest.raises(FrozenStateMismatch, match="backbone 'body'"):
        Toy().load_state_dict(tampered)
    garbage = {**state, FINGERPRINT_KEY: torch.tensor([1, 2, 3], dtype=torch.uint8)}
    with pytest.raises(FrozenStateMismatch, match="not a readable frozen-part fingerprint"):
        Toy().load_state_dict(garbage)
    del state[FINGERPRINT_KEY]
    with pytest.raises(RuntimeError, match=f'Missing key.*"{FINGERPRINT_KEY}"'):
        Toy().load_state_dict(state)
    assert Toy().load_state_dict(state, strict=False).missing_keys == [FINGERPRINT_KEY]


def test_a_full_state_from_before_is_checked_tensor_by_tensor():
    full = _full_state(Toy())
    assert not Toy().load_state_dict(full, strict=True).missing_keys  # older checkpoints still load
    with pytest.raises(FrozenStateMismatch, match="backbone 'body' has the same tensor names and shapes"):
        Toy(seed=1).load_state_dict(full)
