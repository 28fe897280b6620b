"""hub/controls.py: random-init controls equal to the pretraining's init, and single small encoders behind the
fusion rows' trainable interfaces (one frozen backbone, -f trains only the interface)."""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

from upstream_merged.core.frames import align_frames
from upstream_merged.hub.common import EntryArgumentError
from upstream_merged.hub.controls import RANDOM_INIT_ENTRIES, single_interface_entries
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.registry import entries
from upstream_merged.sources import resolve_source
from upstream_merged.testing.contract import assert_upstream_contract
from upstream_merged.testing.s3prl_run import REPO_ROOT

SINGLE = sorted(single_interface_entries())


def _pretrain_small():
    """tools/pretrain_small.py, whose build_model made the init the shipped encoders were pretrained from."""
    tools = str(REPO_ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module("pretrain_small")


def _wavs():
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(16000, generator=gen) * 0.1, torch.randn(12000, generator=gen) * 0.1]


def test_control_entries_are_registered():
    assert set(RANDOM_INIT_ENTRIES) | set(SINGLE) <= set(entries())
    assert SINGLE == sorted(f"{i}_{e}_small" for i in ("hconv", "chconv", "gumd") for e in ("hubert", "mert"))


@pytest.mark.parametrize("name", sorted(RANDOM_INIT_ENTRIES))
def test_random_init_equals_the_init_pretraining_started_from(name):
    seed, encoder, normalize = RANDOM_INIT_ENTRIES[name]
    tool = _pretrain_small()
    assert seed == {"hubert_small": 1, "mert_small": 2}[encoder]  # pretrain_small's default --init-seed per objective
    assert normalize == tool.NORMALIZE[encoder.split("_")[0]]
    upstream = entries()[name]()
    weights = upstream.model.state_dict()
    expected = tool.build_model(tool.ARCH, seed).state_dict()
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in expected), "differs from build_model(ARCH, seed)"
    assert upstream.normalize is normalize is load_hubert_family(resolve_source(f"small:{encoder.split('_')[0]}")).normalize
    assert not upstream.training
    rebuilt = entries()[name]().model.state_dict()  # s3prl's evaluate rebuilds the upstream: the same weights
    assert all(torch.equal(weights[k], rebuilt[k]) for k in weights)


def test_random_inits_differ_from_each_other_and_from_the_trained_encoders():
    one, two = (entries()[n]().model.state_dict() for n in ("small_random_init1", "small_random_init2"))
    trained = load_hubert_family(resolve_source("small:hubert")).model.state_dict()
    weights = [k for k in one if one[k].numel() > 1 and one[k].std() > 0]
    assert len(weights) > 20
    assert all(not torch.equal(one[k], two[k]) and not torch.equal(one[k], trained[k]) for k in weights)


def test_random_init_entry_keeps_the_global_rng_and_the_s3prl_contract():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    upstream = entries()["small_random_init1"]()
    assert torch.equal(torch.get_rng_state(), before)
    assert_upstream_contract(upstream)


def test_random_init_entry_refuses_k_and_g(tmp_path):
    with pytest.raises(EntryArgumentError, match="small_random_init1 takes no -k"):
        entries()["small_random_init1"](ckpt=str(tmp_path))
    with pytest.raises(EntryArgumentError, match="small_random_init2 takes no -g"):
        entries()["small_random_init2"](model_config=str(tmp_path / "r.yaml"))
    with pytest.raises(EntryArgumentError, match="does not take"):
        entries()["small_random_init1"](layer=3)


@pytest.mark.parametrize("name", ["hconv_hubert_small", "chconv_mert_small", "gumd_hubert_small"])
def test_single_encoder_interface_trains_only_the_interface(name):
    _, interface, encoder = single_interface_entries()[name]
    upstream = entries()[name]()
    assert list(upstream.backbones) == [encoder] and upstream.backbones[encoder].kind == "hubert"  # MERT: HuBERT code
    assert upstream.spec.interface == interface
    upstream.train()
    (hidden,) = upstream(_wavs())["hidden_states"]
    assert hidden.shape == (2, 50, 256)  # the fusion rows' 320-sample grid and width
    hidden.pow(2).mean().backward()
    assert all(p.grad is None and not p.requires_grad for p in upstream.backbones.parameters())
    trainable = dict((n, p) for n, p in upstream.named_parameters() if p.requires_grad)
    assert trainable and all(not n.startswith("backbones.") for n in trainable)
    assert all(p.grad is not None for p in trainable.values())
    assert set(upstream.interface_state_dict()) == set(trainable)  # what a -f checkpoint keeps besides the fingerprint
    assert all(not m.training for b in upstream.backbones.values() for m in b.modules())  # dropout off


def test_single_hconv_starts_from_the_pair_rows_interface_and_chconv_projects_one_stream():
    single, pair = entries()["hconv_mert_small"](), entries()["fusion_hubert_mert_small_hconv"]()
    single_state, pair_state = single.interface_state_dict(), pair.interface_state_dict()
    assert single_state.keys() == pair_state.keys() and all(torch.equal(single_state[k], pair_state[k]) for k in pair_state)
    chconv, chconv_pair = entries()["chconv_hubert_small"](), entries()["fusion_hubert_mert_small_chconv"]()
    assert chconv.aligner.concat_projection.weight.shape == (256, 256)  # one stream of 256 -> the common 256
    assert chconv_pair.aligner.concat_projection.weight.shape == (256, 512)
    with torch.no_grad():  # single-stream CHConv = HConv over the layers each passed through the shared Linear
        wavs = _wavs()
        layers = torch.stack(chconv.backbones["hubert"](wavs), dim=1)  # (B, 5, T, 256)
        expected = chconv.interface(align_frames(chconv.aligner.concat_projection(layers), 50))
        torch.testing.assert_close(chconv.eval()(wavs)["hidden_states"][0], expected)
