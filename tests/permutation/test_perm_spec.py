"""Proofs that every declared permutation is a symmetry of tiny random HuBERT models (post-LN and pre-LN)."""
from __future__ import annotations

import pytest
import torch

from upstream_merged.permutation.apply import (
    apply_permutations,
    check_permutations,
    compose,
    compose_all,
    identity,
    invert_all,
    random_permutations,
)
from upstream_merged.permutation.spec import (
    PermutationSpec,
    SpecError,
    check_coverage,
    hubert_spec,
    spec_for_model,
)
from upstream_merged.tiny.hubert import build_tiny_hubert

VARIANTS = {
    "post_ln": {},
    "pre_ln": dict(do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True),
}
TOL = 1e-5


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def model(request):
    return build_tiny_hubert(3, **VARIANTS[request.param])


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(2, 4000, generator=generator)
    mask = torch.ones(2, 4000, dtype=torch.long)
    mask[1, 3000:] = 0  # a padded clip, as s3prl batches look
    wavs[1, 3000:] = 0
    return wavs, mask


def _hidden(model, batch):
    with torch.no_grad():
        return model(batch[0], attention_mask=batch[1], output_hidden_states=True).hidden_states


def _max_error(model, spec, perms, batch):
    """Largest difference between the permuted model's hidden states and the original's (residual basis undone)."""
    reference = _hidden(model, batch)
    other = _scratch(model)
    other.load_state_dict(apply_permutations(model.state_dict(), spec, perms))
    moved = _hidden(other, batch)
    basis = perms.get("residual", identity(model.config.hidden_size))
    return max(float((new - old[..., basis]).abs().max()) for new, old in zip(moved, reference))


_SCRATCH = {}


def _scratch(model):
    """A reusable second model of the same architecture (building HF models is the slow part)."""
    key = id(model)
    if key not in _SCRATCH:
        _SCRATCH[key] = build_tiny_hubert(99, **_overrides(model))
    return _SCRATCH[key]


def _overrides(model):
    config = model.config
    return dict(do_stable_layer_norm=config.do_stable_layer_norm, feat_extract_norm=config.feat_extract_norm,
                conv_bias=config.conv_bias)


def _single_group_perms(spec, name, generator):
    """A random permutation of one group alone (tied partners follow with their identity inside blocks)."""
    group = spec.groups[name]
    if group.tie is None:
        return random_permutations(spec, [name], generator)
    members = spec.ties(list(spec.groups))[group.tie]
    perms = random_permutations(spec, members, generator)
    # keep the shared head mapping but undo the other members' within-head moves: only ``name`` moves inside heads
    for other in members:
        if other != name:
            heads = perms[other].view(-1, group.block)[:, 0] // group.block
            perms[other] = (heads[:, None] * group.block + torch.arange(group.block)).reshape(-1)
    return perms


def test_coverage_holds_for_both_variants(model):
    spec = spec_for_model(model)
    assert set(spec.axes) == set(model.state_dict())


def test_every_group_alone_is_a_symmetry(model, batch):
    spec = spec_for_model(model)
    generator = torch.Generator().manual_seed(1)
    for name in spec.groups:
        perms = _single_group_perms(spec, name, generator)
        assert not torch.equal(perms[name], identity(spec.groups[name].size))
        assert _max_error(model, spec, perms, batch) < TOL, name


def test_head_permutation_alone_is_a_symmetry(model, batch):
    spec = spec_for_model(model)
    block = spec.groups["attn.0.qk"].block
    heads = torch.tensor([2, 0, 3, 1])
    flat = (heads[:, None] * block + torch.arange(block)).reshape(-1)
    assert _max_error(model, spec, {"attn.0.qk": flat, "attn.0.vo": flat}, batch) < TOL


def test_all_groups_at_once_are_a_symmetry(model, batch):
    spec = spec_for_model(model)
    perms = random_permutations(spec, spec.groups, torch.Generator().manual_seed(2))
    assert _max_error(model, spec, perms, batch) < TOL


# Tensors whose permutation cannot show in the outputs: masked_spec_embed is only used by training-time
# masking; a key bias adds q.b_k to every score of a query, which softmax ignores.
_INVISIBLE = ("masked_spec_embed", ".attention.k_proj.bias")


def test_every_declared_axis_is_needed(model, batch):
    """Dropping any one (tensor, axis) from the spec breaks equivalence: the proofs above can fail."""
    spec = spec_for_model(model)
    perms = random_permutations(spec, spec.groups, torch.Generator().manual_seed(4))
    reference = [h[..., perms["residual"]] for h in _hidden(model, batch)]
    other = _scratch(model)
    for name, entries in spec.axes.items():
        if name.endswith(_INVISIBLE):
            continue
        for axis, entry in enumerate(entries):
            if entry is None:
                continue
            broken_axes = dict(spec.axes)
            # a grouped in-channel axis is defined relative to axis 0: dropping axis 0 drops both
            dropped = {axis} | ({1} if axis == 0 and len(entries) > 1 and entries[1] and entries[1].conv_groups > 1 else set())
            broken_axes[name] = tuple(None if i in dropped else e for i, e in enumerate(entries))
            broken = PermutationSpec(groups=spec.groups, axes=broken_axes)
            other.load_state_dict(apply_permutations(model.state_dict(), broken, perms, check=False))
            error = max(float((new - old).abs().max()) for new, old in zip(_hidden(other, batch), reference))
            assert error > 1e-3, f"dropping {name} axis {axis} ({entry.group}) left outputs unchanged"


def test_independent_qkv_is_labelled_and_is_not_a_symmetry(model, batch):
    spec = spec_for_model(model, attention="independent")
    names = spec.select(["qkv_independent"])
    assert names and all(not spec.groups[n].symmetry for n in names)
    perms = random_permutations(spec, names, torch.Generator().manual_seed(5))
    assert _max_error(model, spec, perms, batch) > 1e-2


def test_invert_and_compose_round_trip(model):
    spec = spec_for_model(model)
    generator = torch.Generator().manual_seed(6)
    first = random_permutations(spec, spec.groups, generator)
    second = random_permutations(spec, spec.groups, generator)
    state = model.state_dict()
    back = apply_permutations(apply_permutations(state, spec, first), spec, invert_all(first))
    assert all(torch.equal(back[k], state[k]) for k in state)
    twice = apply_permutations(apply_permutations(state, spec, first), spec, second)
    once = apply_permutations(state, spec, compose_all(first, second))
    assert all(torch.equal(twice[k], once[k]) for k in state)
    p = first["ffn.0"]
    assert torch.equal(compose(p, invert_all({"x": p})["x"]), identity(p.numel()))


def test_block_structure_and_ties_are_enforced(model):
    spec = spec_for_model(model)
    size = spec.groups["residual"].size
    with pytest.raises(SpecError, match="splits a block"):
        check_permutations(spec, {"residual": torch.roll(identity(size), 1)})
    perms = random_permutations(spec, ["attn.0.qk", "attn.0.vo"], torch.Generator().manual_seed(7))
    block = spec.groups["attn.0.qk"].block
    perms["attn.0.vo"] = torch.roll(perms["attn.0.vo"], block)
    with pytest.raises(SpecError, match="together"):
        check_permutations(spec, perms)
    with pytest.raises(SpecError, match="bijection"):
        check_permutations(spec, {"ffn.0": torch.zeros(spec.groups["ffn.0"].size, dtype=torch.long)})


def test_coverage_names_undeclared_and_missing_tensors(model):
    spec = spec_for_model(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with pytest.raises(SpecError, match="encoder.extra.weight"):
        check_coverage(spec, {**shapes, "encoder.extra.weight": (3,)})
    missing = dict(shapes)
    missing.pop("encoder.layers.1.final_layer_norm.bias")
    with pytest.raises(SpecError, match="encoder.layers.1.final_layer_norm.bias"):
        check_coverage(spec, missing)
    wrong = dict(shapes, **{"encoder.layers.0.feed_forward.intermediate_dense.bias": (7,)})
    with pytest.raises(SpecError, match="intermediate_dense.bias"):
        check_coverage(spec, wrong)


def test_spec_variants_cover_batch_norm_and_legacy_weight_norm_names():
    config = build_tiny_hubert(0).config
    spec = hubert_spec(config, keys=["encoder.pos_conv_embed.conv.weight_g"])
    assert "encoder.pos_conv_embed.conv.weight_v" in spec.axes
    config.conv_pos_batch_norm = True
    spec = hubert_spec(config)
    assert "encoder.pos_conv_embed.batch_norm.running_mean" in spec.axes
    assert "encoder.pos_conv_embed.conv.weight" in spec.axes
