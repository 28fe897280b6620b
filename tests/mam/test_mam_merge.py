"""MAM merges on tiny models: λ=0 is the identity, λ=1 copies the source, per-layer λ stays local."""
from __future__ import annotations

import pytest
import torch

from mam_helpers import hidden_states, loaded, merge_to, wavs
from upstream_merged.mam.core import MAMError, resolve_plan
from upstream_merged.mam.layouts import LAYOUTS, QKV
from upstream_merged.mam.loading import load_attention_model
from upstream_merged.mam.upstream import merged_dir_upstream, target_upstream

PAIRS = [("hubert", "bert"), ("hubert", "vit"), ("beats", "bert"), ("beats", "vit")]


def _merged_state(out):
    merged = load_attention_model(out / "model.pt" if (out / "model.pt").is_file() else out)
    return dict(merged.model.state_dict())


def _names(arch, roles, layer):
    return [n for role in roles for n in LAYOUTS[arch].tensor_names(role, layer)]


@pytest.mark.parametrize("target,source", PAIRS)
def test_lambda_zero_reproduces_the_target_exactly(tmp_path, target, source):
    out = merge_to(tmp_path, target, source, **{"lambda": 0.0})
    clips = wavs()
    merged = hidden_states(merged_dir_upstream(out), clips)
    reference = hidden_states(target_upstream(loaded(target)), clips)
    assert len(merged) == len(reference) == 3
    for got, want in zip(merged, reference):
        assert torch.equal(got, want)


@pytest.mark.parametrize("target,source", PAIRS)
def test_lambda_one_on_a_layer_puts_the_source_projections_there(tmp_path, target, source):
    out = merge_to(tmp_path, target, source, **{"lambda": [0.0, 1.0]})
    merged, before, src = _merged_state(out), dict(loaded(target).model.state_dict()), dict(loaded(source).model.state_dict())
    for t_name, s_name in zip(_names(target, QKV, 1), _names(source, QKV, 1)):
        assert torch.equal(merged[t_name], src[s_name]), t_name
    for name in set(merged) - set(_names(target, QKV, 1)):
        assert torch.equal(merged[name], before[name]), name  # layer 0, out_proj, everything else untouched


@pytest.mark.parametrize("target,source", [("hubert", "bert"), ("beats", "vit")])
def test_layer_subset_touches_only_the_chosen_layer(tmp_path, target, source):
    out = merge_to(tmp_path, target, source, **{"lambda": 0.3, "layers": [1]})
    merged, before, src = _merged_state(out), dict(loaded(target).model.state_dict()), dict(loaded(source).model.state_dict())
    touched = _names(target, QKV, 1)
    for t_name, s_name in zip(touched, _names(source, QKV, 1)):
        expected = 0.7 * before[t_name].double() + 0.3 * src[s_name].double()
        assert torch.allclose(merged[t_name].double(), expected, atol=1e-6), t_name
        assert not torch.equal(merged[t_name], before[t_name])
    for name in set(merged) - set(touched):
        assert torch.equal(merged[name], before[name]), name


def test_out_proj_is_merged_only_when_asked(tmp_path):
    without = _merged_state(merge_to(tmp_path, "hubert", "bert", **{"lambda": 0.5}))
    with_out = _merged_state(merge_to(tmp_path, "hubert", "bert", **{"lambda": 0.5, "include_out_proj": True}))
    before, src = dict(loaded("hubert").model.state_dict()), dict(loaded("bert").model.state_dict())
    for layer in (0, 1):
        for t_name, s_name in zip(_names("hubert", ("out",), layer), _names("bert", ("out",), layer)):
            assert torch.equal(without[t_name], before[t_name])
            expected = 0.5 * before[t_name].double() + 0.5 * src[s_name].double()
            assert torch.allclose(with_out[t_name].double(), expected, atol=1e-6)


def test_merge_changes_outputs_in_proportion_to_lambda(tmp_path):
    clips = wavs()
    reference = hidden_states(target_upstream(loaded("hubert")), clips)[-1]
    small = hidden_states(merged_dir_upstream(merge_to(tmp_path, "hubert", "bert", **{"lambda": 0.05})), clips)[-1]
    large = hidden_states(merged_dir_upstream(merge_to(tmp_path, "hubert", "bert", **{"lambda": 0.5})), clips)[-1]
    assert 0 < float((small - reference).abs().mean()) < float((large - reference).abs().mean())


def test_plan_resolution_rules():
    plan = resolve_plan(4, 4, [0.1, 0.2], layers=[3, 1])
    assert [(m.target, m.source, m.lam) for m in plan.layers] == [(3, 3, 0.1), (1, 1, 0.2)]
    assert plan.lambdas(4) == [0.0, 0.2, 0.0, 0.1]
    with pytest.raises(MAMError, match="`lambda` has 3 values but 2 layers"):
        resolve_plan(2, 2, [0.1, 0.2, 0.3])
    with pytest.raises(MAMError, match=r"`lambda` value 1.5 \(layer 0\) is outside \[0, 1\]"):
        resolve_plan(2, 2, 1.5)
    with pytest.raises(MAMError, match="`layers` entry 5 is out of range"):
        resolve_plan(2, 2, 0.1, layers=[5])
    with pytest.raises(MAMError, match="`layer_map` has no entry for merged target layer 1"):
        resolve_plan(2, 3, 0.1, layers=[0, 1], layer_map={0: 2})
    with pytest.raises(MAMError, match="source layer 7"):
        resolve_plan(2, 3, 0.1, layer_map={0: 7})
