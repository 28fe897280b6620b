"""L-MAM: λ is a sigmoid-constrained parameter inside a torch parametrization; sources are frozen buffers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mam_helpers import hidden_states, mam_recipe, merge_to, wavs
from upstream_merged.mam.core import MAMError
from upstream_merged.mam.learnable import find_lambda_states
from upstream_merged.mam.upstream import learnable_upstream, merged_dir_upstream
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY, FrozenStateMismatch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tools"))
import show_lambdas  # noqa: E402


def _lmam(target="hubert", source="bert", **keys):
    keys.setdefault("lambda_init", 0.05)
    return learnable_upstream(mam_recipe(target, source, learnable=True, **keys))


@pytest.mark.parametrize("target,source", [("hubert", "bert"), ("beats", "vit")])
def test_gradient_reaches_every_lambda(target, source):
    upstream = _lmam(target, source).train()
    loss = sum(h.pow(2).mean() for h in upstream(wavs())["hidden_states"])
    loss.backward()
    grad = upstream.mam_lambda.logits.grad
    assert grad is not None and grad.shape == (2,) and bool((grad != 0).all())


@pytest.mark.parametrize("target,source,init", [("hubert", "bert", 0.05), ("beats", "vit", 0.10)])
def test_learnable_at_init_equals_the_fixed_merge(tmp_path, target, source, init):
    fixed = hidden_states(merged_dir_upstream(merge_to(tmp_path, target, source, **{"lambda": init})), wavs())
    learned = hidden_states(_lmam(target, source, lambda_init=init), wavs())
    for a, b in zip(fixed, learned):
        assert torch.allclose(a, b, atol=1e-5)


def test_lambda_stays_inside_the_unit_interval_and_only_logits_are_new_parameters():
    upstream = _lmam(lambda_init=[0.2, 0.7])
    assert upstream.lambdas == pytest.approx({0: 0.2, 1: 0.7})
    with torch.no_grad():
        upstream.mam_lambda.logits.copy_(torch.tensor([-80.0, 80.0]))
    values = upstream.mam_lambda.values().detach()
    assert 0.0 <= float(values.min()) and float(values.max()) <= 1.0
    names = [name for name, _ in upstream.named_parameters()]
    assert "mam_lambda.logits" in names
    assert not any(name.endswith(".source") for name in names)  # sources are buffers, never trained
    assert any(name.endswith("q_proj.parametrizations.weight.0.source") for name, _ in upstream.named_buffers())


def test_trainable_lambdas_freezes_everything_else():
    upstream = _lmam(trainable="lambdas")
    trainable = [name for name, p in upstream.named_parameters() if p.requires_grad]
    assert trainable == ["mam_lambda.logits"]


def test_lambda_init_at_a_bound_is_refused():
    with pytest.raises(MAMError, match="strictly inside"):
        _lmam(lambda_init=0.0)


def test_state_dict_round_trip_restores_learned_lambda_and_outputs():
    trained = _lmam()
    with torch.no_grad():
        trained.mam_lambda.logits.add_(torch.tensor([0.5, -0.5]))
    rebuilt = _lmam()
    rebuilt.load_state_dict(trained.state_dict(), strict=True)  # what s3prl's runner does on -e
    assert rebuilt.lambdas == pytest.approx(trained.lambdas)
    assert find_lambda_states(trained.state_dict())["mam_lambda"] == pytest.approx(trained.lambdas)
    for a, b in zip(hidden_states(trained, wavs()), hidden_states(rebuilt, wavs())):
        assert torch.equal(a, b)


def test_trainable_lambdas_saves_only_lambdas_and_refuses_another_target():
    trained = _lmam(trainable="lambdas")
    with torch.no_grad():
        trained.mam_lambda.logits.add_(torch.tensor([0.5, -0.5]))
    state = trained.state_dict()  # what s3prl's runner saves under -f
    assert set(state) == {"mam_lambda.logits", "mam_lambda.layers", FINGERPRINT_KEY}
    rebuilt = _lmam(trainable="lambdas")
    rebuilt.load_state_dict(state, strict=True)
    assert rebuilt.lambdas == pytest.approx(trained.lambdas)
    for a, b in zip(hidden_states(trained, wavs()), hidden_states(rebuilt, wavs())):
        assert torch.equal(a, b)
    other_target = learnable_upstream(mam_recipe("tiny:hubert:1", "bert", learnable=True, lambda_init=0.05,
                                                 trainable="lambdas"), entry="lmam_test")
    with pytest.raises(FrozenStateMismatch, match="lmam_test refuses .*model 'target' has the same tensor names"):
        other_target.load_state_dict(state)
    with pytest.raises(FrozenStateMismatch, match="model 'target' of this upstream is not in the checkpoint"):
        _lmam(trainable="lambdas").load_state_dict(_lmam().state_dict())  # trained with trainable: all


def test_show_lambdas_reads_a_runner_checkpoint(tmp_path, capsys):
    upstream = _lmam(lambda_init=[0.25, 0.5])
    torch.save({"Upstream": upstream.state_dict(), "Step": 7}, tmp_path / "states-7.ckpt")
    assert show_lambdas.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "states-7.ckpt (step 7)" in printed
    assert "layer   0  lambda 0.250000" in printed and "layer   1  lambda 0.500000" in printed
    torch.save({"Step": 7}, tmp_path / "dev-best.ckpt")  # preferred over states-*, but saved without -f
    assert show_lambdas.main([str(tmp_path)]) == 2
    assert "only for runs trained with -f" in capsys.readouterr().err
