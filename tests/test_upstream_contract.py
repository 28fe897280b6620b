"""s3prl's upstream contract on every `_tiny` hub entry, the shipped `_small` encoders, and the published baselines loaded from tiny checkpoints.

Entries are enumerated from the registry, so a new `_tiny` entry is covered without editing this file.
"""
import pytest
import torch

from upstream_merged.registry import entries
from upstream_merged.testing.contract import assert_upstream_contract

TINY_ENTRIES = sorted(name for name in entries() if name.endswith("_tiny"))
# Published entries that take -k: run through the real entry on an embedded tiny checkpoint of the same format.
PUBLISHED_ON_TINY = {
    "hubert_base_hf": "tiny:hubert:0",
    "mert_v0_public": "tiny:mert_v0:0",  # 16 kHz, per-clip normalisation
    "mert_v1_95m": "tiny:mert_v1:0",  # 24 kHz: resampled in, frames interpolated out
    "beats": "tiny:beats:0",
}
# The shipped small encoders: every non-merge `_small` entry, plus the flagship merge (its twins share its code).
SMALL_ENTRIES = sorted(name for name in entries() if ("_small" in name) and not name.startswith("merged_")) + [
    "merged_hubert_mert_small"]
CASES = [(name, None) for name in TINY_ENTRIES + SMALL_ENTRIES] + sorted(PUBLISHED_ON_TINY.items())


def test_every_family_has_a_tiny_entry():
    families = ("hubert_tiny", "mert_v1_tiny", "beats_tiny", "merged_hubert_mert_", "mam_hubert_", "mam_beats_",
                "lmam_hubert_", "lmam_beats_", "fusion_")
    for prefix in families:
        assert any(name.startswith(prefix) for name in TINY_ENTRIES), f"no _tiny entry for {prefix}"


@pytest.mark.parametrize("name,ckpt", CASES, ids=[name for name, _ in CASES])
def test_s3prl_upstream_contract(name, ckpt):
    upstream = entries()[name](ckpt=ckpt)
    assert isinstance(upstream, torch.nn.Module)
    assert_upstream_contract(upstream)
