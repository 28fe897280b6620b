"""The shipped small encoders: recorded sha256, strict loading, same architecture, different weights."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from upstream_merged import pretrained
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.sources import resolve_source

REPO = Path(__file__).resolve().parents[2]


def test_sha256sums_cover_every_shipped_file_and_match():
    sums = pretrained.recorded_sums()
    on_disk = {str(p.relative_to(pretrained.ROOT)) for d in pretrained.SHIPPED.values()
               for p in (pretrained.ROOT / d).iterdir() if p.is_file()}
    assert set(sums) == on_disk and len(on_disk) == 3 * len(pretrained.SHIPPED)
    for name, digest in sums.items():
        assert pretrained.file_sha256(pretrained.ROOT / name) == digest, f"{name} differs from SHA256SUMS"


def test_shipped_encoders_load_strictly_with_the_same_architecture():
    hubert = load_hubert_family(resolve_source("small:hubert"))
    mert = load_hubert_family(resolve_source("small:mert"))
    assert (hubert.normalize, mert.normalize) == (False, True) and hubert.sample_rate == mert.sample_rate == 16000
    a, b = hubert.model.state_dict(), mert.model.state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    assert hubert.model.config.to_dict() == mert.model.config.to_dict()
    different = [k for k in a if a[k].numel() > 1 and not torch.equal(a[k], b[k])]
    assert len(different) > 0.9 * sum(a[k].numel() > 1 for k in a)  # independently initialised and trained
    with torch.no_grad():
        frames = hubert.model(torch.zeros(1, 16000)).last_hidden_state.shape[1]
    assert frames == 49  # HuBERT's CNN: one frame per 320 samples


def test_small_source_names():
    assert resolve_source("small:mert") == pretrained.ROOT / "mert_small"
    with pytest.raises(pretrained.ShippedModelError, match="small:hubert, small:mert"):
        resolve_source("small:wavlm")


def test_setup_py_ships_every_file():
    text = (REPO / "setup.py").read_text()
    patterns = re.findall(r'"(pretrained/[^"]+)"', text)
    shipped = {p for pattern in patterns for p in (REPO / "upstream_merged").glob(pattern)}
    expected = {pretrained.SUMS_FILE, *(pretrained.ROOT / name for name in pretrained.recorded_sums())}
    assert expected <= shipped
