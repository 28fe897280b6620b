import copy

import pytest
import torch

from upstream_merged.evaluation.features import Upstream, cached_splits
from upstream_merged.evaluation.probe import (Schedule, build_featurizer, featurize, one_frame_pooling, poolable,
                                               train_probe)


@pytest.fixture
def ks(ks_task, make_setup, feature_root):
    setup = make_setup(ks_task, steps=60, eval_step=20)
    return setup, cached_splits(Upstream("hubert_tiny"), setup, root=feature_root, progress=False)


@pytest.mark.parametrize("normalize", [False, True])
def test_featurize_is_the_stock_featurizer_forward(normalize):
    torch.manual_seed(0)
    featurizer = build_featurizer(layers=4, dim=6, downsample_rate=320, normalize=normalize)
    with torch.no_grad():
        featurizer.weights.copy_(torch.randn(4))
    layers = [torch.randn(3, 10, 6) * (i + 1) for i in range(4)]  # (B, T, D) per layer
    wavs = [torch.zeros(10 * 320), torch.zeros(7 * 320), torch.zeros(4 * 320)]
    stock = featurizer(wavs, {"hidden_states": layers})  # s3prl's forward: weighted sum, then tolist
    ours = featurize(featurizer, torch.stack(layers, dim=2))  # (B, T, D)
    for clip, frames in zip(stock, (10, 7, 4)):
        assert clip.shape == (frames, 6)
    for k, frames in enumerate((10, 7, 4)):
        torch.testing.assert_close(ours[k, :frames], stock[k])


def test_the_head_is_the_tasks_own_stock_expert(ks):
    setup, _ = ks
    expert = setup.build_expert(upstream_dim=32, upstream_rate=320)
    from s3prl.downstream.model import UtteranceLevel
    from s3prl.downstream.speech_commands.expert import DownstreamExpert

    assert type(expert) is DownstreamExpert and isinstance(expert.model, UtteranceLevel)
    assert poolable(setup, normalize=False) and not poolable(setup, normalize=True)


def test_pool_first_trains_the_same_probe_as_the_frame_path(ks):
    setup, features = ks
    schedule = Schedule.stock(setup.config)
    fast = train_probe(setup, features, 0, schedule, pool_first=True)
    frames = train_probe(setup, features, 0, schedule, pool_first=False)
    assert fast.pool_first and not frames.pool_first
    assert [c["dev_acc"] for c in fast.dev_curve] == [c["dev_acc"] for c in frames.dev_curve]
    for a, b in zip(fast.dev_curve, frames.dev_curve):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
    assert fast.predictions == frames.predictions
    assert fast.layer_weights == pytest.approx(frames.layer_weights, rel=1e-4)


def test_the_lean_step_trains_the_stock_loops_probe_bit_for_bit(ks):
    """One-frame pooling and the foreach optimizer change no number: same curve, predictions and weights."""
    setup, features = ks
    schedule = Schedule.stock(setup.config)
    lean = train_probe(setup, features, 0, schedule, lean=True)
    stock = train_probe(setup, features, 0, schedule, lean=False)
    assert lean.dev_curve == stock.dev_curve and lean.predictions == stock.predictions
    assert lean.layer_weights == stock.layer_weights


def test_one_frame_pooling_equals_meanpooling_on_one_frame_clips_forward_and_backward():
    from s3prl.downstream.model import MeanPooling, UtteranceLevel

    torch.manual_seed(0)
    head = UtteranceLevel(input_dim=5, output_dim=3)
    lean = copy.deepcopy(head)
    assert one_frame_pooling(lean) == 1 and one_frame_pooling(torch.nn.Linear(2, 2)) == 0
    assert isinstance(lean.pooling, MeanPooling)  # the module stays; only its forward reads one frame
    x = torch.randn(4, 1, 5)
    inputs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    outs = [model(inp, torch.ones(4, dtype=torch.long))[0] for model, inp in zip((head, lean), inputs)]
    assert torch.equal(outs[0], outs[1])
    for out in outs:
        (out ** 2).sum().backward()
    assert torch.equal(inputs[0].grad, inputs[1].grad)
    for a, b in zip(head.parameters(), lean.parameters()):
        assert torch.equal(a.grad, b.grad)


def test_pool_first_is_refused_where_it_would_change_the_probe(ks):
    setup, features = ks
    with pytest.raises(ValueError, match="not exact"):
        train_probe(setup, features, 0, Schedule.stock(setup.config), pool_first=True, normalize=True)


def test_a_seed_reproduces_its_probe_and_another_seed_does_not(ks):
    setup, features = ks
    schedule = Schedule.stock(setup.config)
    a, again, other = (train_probe(setup, features, s, schedule) for s in (0, 0, 1))
    assert a.predictions == again.predictions and a.dev_curve == again.dev_curve
    assert a.layer_weights != other.layer_weights
    assert a.steps == 60 and [c["step"] for c in a.dev_curve] == [20, 40, 60]
    assert a.test["total"] == len(setup.clips("test")) == len(a.predictions)
    assert {p["label"] for p in a.predictions.values()} <= set(range(12))


def test_early_stopping_waits_for_min_steps_then_stops_on_a_plateau(ks):
    setup, features = ks
    schedule = Schedule.converge(max_steps=5000, eval_step=20, patience=3, min_steps=200)
    result = train_probe(setup, features, 0, schedule)
    assert 200 <= result.steps < 5000
    assert result.steps - result.best_step >= 3 * 20  # stopped only after 3 evaluations without a new best
    best = max(c["dev_acc"] for c in result.dev_curve)
    assert result.dev_accuracy == best
    assert result.best_step == next(c["step"] for c in result.dev_curve if c["dev_acc"] == best)  # the first best
    with pytest.raises(ValueError, match="min_steps"):
        Schedule.converge(max_steps=100, min_steps=200)
