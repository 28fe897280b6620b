"""The probe s3prl trains on a frozen upstream (Featurizer + the task's head), trained on cached hidden states.

Everything that has parameters or a loss is s3prl's own code: the weighted layer sum is
``s3prl.upstream.interfaces.Featurizer`` (built around a stand-in upstream that only reports the cached
shape; its ``_select_feature`` / ``_weighted_sum`` run unchanged, layer norm included when
``normalize``), the head and loss are the task's ``DownstreamExpert`` (``projector`` + ``model`` +
``forward``), the optimizer and scheduler come from ``s3prl.optimizers`` / ``s3prl.schedulers`` with
the task config, and the loop follows ``s3prl.downstream.runner.Runner.train``: seeding as
``run_downstream.py``, batch order from the expert's own dataloaders, gradient accumulation, clipping
over the Featurizer's and head's parameters, a NaN-gradient skip, dev evaluation every ``eval_step``
with the runner's reseeding, the first strictly better dev accuracy kept (``dev-best.ckpt``), and test
evaluated with that state.

Same seed, same random stream: the batch indices are drawn by the expert's own samplers inside a
DataLoader (tasks.TaskSetup.batches), and wherever the stock run forwards the upstream (the Featurizer's
1 s probe, every train and eval batch) the probe replays the draws that forward takes from the global
torch RNG (transformers' HuBERT draws one number per layer for LayerDrop even in eval mode; measured
per upstream at extraction). A stock run and a cached probe with the same seed therefore initialise the
head identically and see the same batches; they differ only by float16 storage and by the crops of
randomly cropped clips (a fixed set of crops instead of a fresh one per read).

Two schedules: :meth:`Schedule.stock` is the config's budget (what ``run_downstream.py`` would do), and
:meth:`Schedule.converge` trains until dev accuracy stops improving (early stopping with patience after
a minimum number of steps).

Pool-first fast path: when the head is ``UtteranceLevel`` with ``MeanPooling`` and no ``pre_net`` and the
Featurizer does not normalise, everything before the pooling is linear (layer sum, projector), so the
mean over frames can be taken first: the head then sees one frame per clip, the per-layer means of the
cached ``pooled.npy``. The function, parameters and gradients are the same; only the arithmetic order
differs (tests/evaluation/test_probe.py checks the two paths agree). On that path every clip is one frame, so
s3prl's MeanPooling loop (a slice and a mean per clip) is replaced by taking the frame, and the optimizer and
gradient clipping run their foreach implementations: same arithmetic, bit for bit (checked against the stock
loop by the tests and on the table's cells), a probe about a fifth to a quarter faster (tools/bench_probe.py).
"""
from __future__ import annotations

import copy
import logging
from collections import defaultdict
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from upstream_merged.core.rng import replay_rand_draws
from upstream_merged.evaluation.features import FeatureSplit
from upstream_merged.evaluation.stats import Accuracy, accuracy
from upstream_merged.evaluation.tasks import TaskSetup, seed_everything, stock_eval_batches

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the Featurizer
class CachedUpstreamShape(nn.Module):
    """Stands in for the upstream when s3prl's Featurizer probes it: hidden states of the cached shape."""

    def __init__(self, layers: int, dim: int, downsample_rate: int, rng_draws: int = 0):
        super().__init__()
        self.layers, self.dim, self.rate, self.rng_draws = layers, dim, downsample_rate, rng_draws

    def get_downsample_rates(self, key: str) -> int:
        """Samples per frame of the cached features."""
        return self.rate

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        replay_rand_draws(self.rng_draws)
        frames = round(max(len(w) for w in wavs) / self.rate)
        states = [torch.zeros(len(wavs), frames, self.dim) for _ in range(self.layers)]
        return {"hidden_states": states if self.layers > 1 else states[0]}


def build_featurizer(layers: int, dim: int, downsample_rate: int, normalize: bool = False,
                     layer_selection: Optional[int] = None, rng_draws: int = 0) -> nn.Module:
    """s3prl's Featurizer over cached hidden states (it draws 1 s of noise to probe, as in a stock run)."""
    from s3prl.upstream.interfaces import Featurizer

    return Featurizer(CachedUpstreamShape(layers, dim, downsample_rate, rng_draws), feature_selection="hidden_states",
                      upstream_device="cpu", layer_selection=layer_selection, normalize=normalize)


def featurize(featurizer: nn.Module, stacked: torch.Tensor) -> torch.Tensor:
    """(B, T, L, D) cached layers -> (B, T, D): Featurizer._select_feature then _weighted_sum, as Featurizer.forward."""
    layers = list(stacked.unbind(dim=2)) if stacked.shape[2] > 1 else stacked[:, :, 0]
    feature = featurizer._select_feature({"hidden_states": layers})
    if isinstance(feature, (list, tuple)):
        feature = featurizer._weighted_sum(feature)
    return feature


def layer_weights(featurizer: nn.Module) -> Optional[List[float]]:
    """softmax of the Featurizer's layer weights (None when it selects one feature)."""
    weights = getattr(featurizer, "weights", None)
    return None if weights is None else torch.softmax(weights.detach(), dim=-1).tolist()


def poolable(setup: TaskSetup, normalize: bool) -> bool:
    """True when the mean over frames commutes with everything before the head's pooling (see module doc)."""
    modelrc = setup.modelrc
    select = modelrc.get("select")
    conf = modelrc.get(select, {}) or {}
    return (not normalize and select == "UtteranceLevel" and conf.get("pooling", "MeanPooling") == "MeanPooling"
            and not isinstance(conf.get("pre_net"), dict))


def _first_frame(feature_BxTxH: torch.Tensor, features_len, **kwargs) -> Tuple[torch.Tensor, torch.Tensor]:
    """MeanPooling.forward where every clip is one frame: the mean of one frame is that frame, bit for bit."""
    return feature_BxTxH[:, 0], torch.ones(len(feature_BxTxH)).long()


def one_frame_pooling(expert: nn.Module) -> int:
    """Make the expert's s3prl MeanPooling modules read one frame per clip (the pool-first path); returns how many.

    s3prl's MeanPooling loops over the batch (a slice and a mean per clip, and as many autograd nodes); on
    one-frame clips that loop took a third of the head's forward time (profiled on ks). Forward values and gradients are unchanged: the
    mean of a single float is exact (x / 1), and its backward passes the gradient through unscaled.
    """
    from s3prl.downstream.model import MeanPooling

    count = 0
    for module in expert.modules():
        if type(module) is MeanPooling:
            module.forward = _first_frame
            count += 1
    return count


def multi_tensor(optimizer: torch.optim.Optimizer) -> None:
    """Let a torch optimizer step all tensors of a group per operation (``foreach``) instead of one by one.

    On a CPU torch defaults to the single-tensor loop; the foreach path applies the same operations in the
    same order to each tensor (its CPU kernels loop over the list), so the weights come out bit for bit the
    same with a fraction of the Python overhead of the probe's small tensors.
    """
    for group in optimizer.param_groups:
        if "foreach" in group:
            group["foreach"] = True


# ----------------------------------------------------------------------------- batches
class SplitFeeder:
    """Turns stock dataset indices into the Featurizer's input: padded (B, T, L, D) layers and frame counts."""

    def __init__(self, features: FeatureSplit, pool_first: bool):
        self.features = features
        self.pool_first = pool_first
        self.pooled = torch.from_numpy(np.array(features.pooled, dtype=np.float32)) if pool_first else None

    def row(self, index: int) -> int:
        """The row read for a clip: its only row, or a random one of its crops (python's random, like the stock randint)."""
        rows = self.features.rows_of(index)
        return rows[0] if len(rows) == 1 else rows[random.randrange(len(rows))]

    def batch(self, indices: Sequence[int]) -> Tuple[torch.Tensor, List[int]]:
        """Layers of the batch, (B, T, L, D) float32, and each clip's frame count."""
        rows = [self.row(i) for i in indices]
        if self.pool_first:
            return self.pooled[rows].unsqueeze(1), [1] * len(rows)  # (B, 1, L, D)
        lengths = [int(self.features.rows.frames[r]) for r in rows]
        out = np.zeros((len(rows), max(lengths), self.features.layers, self.features.dim), dtype=np.float32)
        for k, r in enumerate(rows):
            out[k, :lengths[k]] = self.features.frames(r)
        return torch.from_numpy(out), lengths


# ----------------------------------------------------------------------------- schedule and result
@dataclass(frozen=True)
class Schedule:
    """Steps, dev evaluation interval and early stopping (``patience`` evaluations without a new best, after ``min_steps``)."""

    total_steps: int
    eval_step: int
    patience: Optional[int] = None
    min_steps: int = 0
    name: str = "stock"

    @classmethod
    def stock(cls, config: dict) -> "Schedule":
        """The config's own budget: runner.total_steps, dev every runner.eval_step, no early stop."""
        runner = config["runner"]
        return cls(int(runner["total_steps"]), int(runner["eval_step"]), name="stock")

    @classmethod
    def converge(cls, max_steps: int = 30000, eval_step: int = 200, patience: int = 15,
                 min_steps: int = 3000) -> "Schedule":
        """Until dev accuracy plateaus: stop after ``patience`` evaluations without a new best (and >= ``min_steps``)."""
        if min_steps > max_steps:
            raise ValueError(f"min_steps={min_steps} exceeds max_steps={max_steps}")
        return cls(max_steps, eval_step, patience, min_steps, name="converge")


@dataclass
class ProbeResult:
    """One trained probe: its schedule, the dev curve, the selected step and test accuracy with per-clip predictions."""

    task: str
    entry: str
    seed: int
    schedule: dict
    steps: int
    best_step: Optional[int]
    selected: str  # dev-best | last (no dev accuracy ever beat the expert's initial best_score)
    dev_accuracy: Optional[float]
    test: dict  # Accuracy.as_dict()
    predictions: Dict[str, dict]  # clip id -> {"label", "predicted", "correct"}
    dev_curve: List[dict] = field(default_factory=list)  # {"step", "dev_acc", "train_loss"}
    layer_weights: Optional[List[float]] = None
    pool_first: bool = False
    seconds: float = 0.0
    cache: Dict[str, str] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> Accuracy:
        """Test accuracy with its Wilson interval."""
        return Accuracy(**self.test)

    def correct(self) -> Dict[str, bool]:
        """{clip id: correct} for paired comparisons (stats.compare_predictions)."""
        return {uid: bool(p["correct"]) for uid, p in self.predictions.items()}

    def as_dict(self) -> dict:
        """Plain data (JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProbeResult":
        """Inverse of :meth:`as_dict`."""
        return cls(**data)


# ----------------------------------------------------------------------------- training
class _Probe:
    """Featurizer + stock expert, the logits hook, and one forward over a batch of dataset indices."""

    def __init__(self, setup: TaskSetup, features: Dict[str, FeatureSplit], pool_first: bool, normalize: bool,
                 layer_selection: Optional[int], lean: bool = True):
        some = features["train"]
        self.setup = setup
        self.rng_draws = int(some.meta.get("rng_draws_per_forward") or 0)  # the upstream forward each batch replaces
        self.featurizer = build_featurizer(some.layers, some.dim, some.downsample_rate, normalize, layer_selection,
                                           self.rng_draws)
        self.expert = setup.build_expert(upstream_dim=self.featurizer.output_dim,
                                         upstream_rate=self.featurizer.downsample_rate)
        if pool_first and lean:
            one_frame_pooling(self.expert)
        self.feeders = {split: SplitFeeder(f, pool_first) for split, f in features.items()}
        self.clips = {split: setup.clips(split) for split in features}
        self._logits: List[torch.Tensor] = []
        self.expert.model.register_forward_hook(lambda module, inputs, output: self._logits.append(output[0].detach()))

    def modules(self) -> List[nn.Module]:
        """The trainable entries, in the runner's order (Featurizer, Downstream)."""
        return [self.featurizer, self.expert]

    def forward(self, split: str, indices: Sequence[int], records: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """The expert's loss on a batch (records filled as the stock expert fills them) and the head's logits."""
        stacked, lengths = self.feeders[split].batch(indices)
        replay_rand_draws(self.rng_draws)  # where the stock run forwards the upstream
        feature = featurize(self.featurizer, stacked)  # (B, T, D)
        per_clip = [f[:n] for f, n in zip(feature, lengths)]
        clips = self.clips[split]
        self._logits.clear()
        loss = self.expert(split, per_clip, [clips[i].label for i in indices], [clips[i].uid for i in indices],
                           records=records)
        return loss, self._logits[-1]

    def state(self) -> dict:
        """A copy of both modules' weights (the content of dev-best.ckpt that matters)."""
        return {"Featurizer": copy.deepcopy(self.featurizer.state_dict()),
                "Downstream": copy.deepcopy(self.expert.state_dict())}

    def load(self, state: dict) -> None:
        """Restore :meth:`state`."""
        self.featurizer.load_state_dict(state["Featurizer"])
        self.expert.load_state_dict(state["Downstream"])

    def evaluate(self, split: str, seed: int) -> Tuple[float, List[dict]]:
        """Runner.evaluate: reseed, eval mode, the expert's dataloader order; mean of records['acc'] and per-item predictions."""
        seed_everything(seed)
        training = [m.training for m in self.modules()]
        for module in self.modules():
            module.eval()
        records = _records()
        items: List[dict] = []
        with torch.no_grad():
            for batch in stock_eval_batches(self.setup, self.expert, split):
                start = len(records["acc"])
                _, logits = self.forward(split, batch, records)
                for k, index in enumerate(batch):
                    clip = self.clips[split][index]
                    items.append({"uid": clip.uid, "label": clip.label, "predicted": int(logits[k].argmax()),
                                  "correct": bool(records["acc"][start + k])})
        for module, was in zip(self.modules(), training):
            module.train(was)
        return float(np.mean(records["acc"])), items


def _records() -> dict:
    """The runner's records: a defaultdict(list) the expert appends to."""
    return defaultdict(list)


def train_probe(setup: TaskSetup, features: Dict[str, FeatureSplit], seed: int, schedule: Schedule,
                entry: str = "", pool_first: Optional[bool] = None, normalize: bool = False,
                layer_selection: Optional[int] = None, progress: bool = False, lean: bool = True) -> ProbeResult:
    """Train the stock probe on cached features; return the dev curve and test accuracy at the best dev step.

    ``features`` maps 'train', 'dev' and 'test' to the cached splits; ``pool_first=None`` takes the
    fast path whenever it is exact (:func:`poolable`). ``lean`` (default) runs the same arithmetic with fewer
    Python dispatches (:func:`one_frame_pooling`, :func:`multi_tensor`); ``lean=False`` runs s3prl's per-clip
    pooling loop and the single-tensor optimizer as the stock runner on a CPU does. Both give identical probes.
    """
    start_time = time.monotonic()
    exact = poolable(setup, normalize)
    if pool_first is None:
        pool_first = exact
    elif pool_first and not exact:
        raise ValueError(f"pool_first=True is not exact for modelrc {setup.modelrc} with normalize={normalize}")
    for split in ("train", "dev", "test"):
        if split not in features:
            raise ValueError(f"features for split {split!r} are missing (got {sorted(features)})")
    runner = setup.config["runner"]
    seed_everything(seed)  # run_downstream.py, before building the models
    probe = _Probe(setup, features, pool_first, normalize, layer_selection, lean)
    from s3prl.optimizers import get_optimizer

    optimizer = get_optimizer(probe.modules(), schedule.total_steps, setup.config["optimizer"])
    if lean:
        multi_tensor(optimizer)
    scheduler = None
    if setup.config.get("scheduler"):
        from s3prl.schedulers import get_scheduler

        scheduler = get_scheduler(optimizer, schedule.total_steps, setup.config["scheduler"])
    if runner.get("fp16"):
        log.warning("runner.fp16 is ignored on CPU (the stock runner's autocast only acts on CUDA)")
    parameters = [p for m in probe.modules() for p in m.parameters()]
    accumulate = int(runner.get("gradient_accumulate_steps", 1))
    clip_norm = float(runner["gradient_clipping"])
    for module in probe.modules():
        module.train()

    best = float(probe.expert.best_score.item()) if hasattr(probe.expert, "best_score") else -math.inf
    best_step: Optional[int] = None
    best_state: Optional[dict] = None
    curve: List[dict] = []
    losses: List[float] = []
    step, backward_steps, epoch = 0, 0, 0
    stop = False
    bar = tqdm(total=schedule.total_steps, desc=f"probe {entry} {setup.downstream}", disable=not progress)
    while step < schedule.total_steps and not stop:
        for batch in setup.batches(probe.expert, "train", epoch=epoch):
            if step >= schedule.total_steps:
                break
            loss, _ = probe.forward("train", batch, _records())
            (loss / accumulate).backward()
            losses.append(float(loss.detach()))
            backward_steps += 1
            if backward_steps % accumulate > 0:
                continue
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, clip_norm, foreach=True if lean else None)
            if math.isnan(grad_norm):
                log.warning("grad norm is NaN at step %d (step skipped, as the stock runner does)", step + 1)
            else:
                optimizer.step()
            optimizer.zero_grad()
            if scheduler is not None:
                scheduler.step()
            step += 1
            bar.update(1)
            if step % schedule.eval_step == 0:
                dev_acc, _ = probe.evaluate("dev", seed)
                curve.append({"step": step, "dev_acc": dev_acc, "train_loss": float(np.mean(losses)) if losses else None})
                losses = []
                if dev_acc > best:
                    best, best_step, best_state = dev_acc, step, probe.state()
                if (schedule.patience is not None and step >= schedule.min_steps
                        and step - (best_step or 0) >= schedule.patience * schedule.eval_step):
                    stop = True
                    break
        epoch += 1
    bar.close()
    selected = "dev-best"
    if best_state is None:
        log.warning("%s %s seed %d: dev accuracy never beat %.3f; testing the last state (a stock run would have "
                    "no dev-best.ckpt)", entry, setup.downstream, seed, best)
        selected = "last"
    else:
        probe.load(best_state)
    _, items = probe.evaluate("test", seed)
    test = accuracy([item["correct"] for item in items])
    predictions = {item["uid"]: {"label": item["label"], "predicted": item["predicted"], "correct": item["correct"]}
                   for item in items}
    if len(predictions) != len(items):
        raise ValueError(f"{setup.downstream} test: clip ids are not unique ({len(items)} items, {len(predictions)} ids)")
    return ProbeResult(task=setup.downstream, entry=entry, seed=seed, schedule=asdict(schedule), steps=step,
                       best_step=best_step, selected=selected, dev_accuracy=None if best_state is None else best,
                       test=test.as_dict(), predictions=predictions, dev_curve=curve,
                       layer_weights=layer_weights(probe.featurizer), pool_first=bool(pool_first),
                       seconds=round(time.monotonic() - start_time, 2),
                       cache={split: str(f.directory) for split, f in features.items()})

