"""Checks of the s3prl upstream contract, shared by the tests of every upstream family."""
from __future__ import annotations

from typing import List

import torch


def assert_deterministic_and_same_layers(upstream: torch.nn.Module, wavs: List[torch.Tensor]) -> None:
    """Eval mode gives identical outputs twice, and train mode returns as many hidden states as eval."""
    upstream.eval()
    with torch.no_grad():
        first, second = upstream(wavs)["hidden_states"], upstream(wavs)["hidden_states"]
    assert all(torch.equal(a, b) for a, b in zip(first, second)), "outputs differ between two eval passes"
    upstream.train()
    assert len(upstream(wavs)["hidden_states"]) == len(first), "train and eval return different layer counts"
