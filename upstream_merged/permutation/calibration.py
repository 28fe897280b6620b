"""One calibration pass: both models hear the same clips, hooks at every probe site feed streaming statistics.

Each model gets the audio at its native sample rate (and its own input normalisation). Padded frames
are masked out at every site; when the models' frame rates differ, B's frames are interpolated onto
A's grid. High-rate sites keep a seeded random subsample of frames (``frames_per_second`` per site),
chosen per clip from the clip's global index, so results do not depend on batching or sharding.

Everything runs on one device (``device``: CPU, or a GPU with both models, the co-moment GEMMs and
the accumulators on it); audio is decoded on the host and moved once per batch. On a CPU with two or
more torch threads, a and b forward side by side, each on half the threads (a forward's small ops
parallelise poorly: HuBERT Base on one thread takes about 0.87 of the CPU time it takes on two). The two
CNNs - a forward's activation peak, about 96 MB for 5 s of audio - take turns and never run at once (b's
starts when a's is over, a's next when b's is over: :mod:`upstream_merged.core.staggered`); the widest
sites are fed on the helper thread once both forwards are done, the others by b's hooks as b's rows
arrive; the helper shares the heap arena, and buffers of 24 MiB or more are mapped on their own (no
resident holes in that heap; a process-wide glibc setting that stays). Otherwise a then b, b's hooks
feeding every site. Either way each forward's inputs are made when it comes up and dropped after it.
A calibration is sharded across processes only when it is given a :class:`Shard` explicitly (the merge
CLI under torchrun does that): a hub entry built inside someone else's process group calibrates on every
clip and calls no collective.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from upstream_merged.core.frames import conv_output_length, receptive_field
from upstream_merged.core.memory import release_free_memory, share_the_heap_with_new_threads, unmap_large_buffers
from upstream_merged.core.rng import without_global_rng_effects
from upstream_merged.core.staggered import half_the_threads_each, run_staggered
from upstream_merged.core.stats import CrossMoments
from upstream_merged.permutation.audio import CalibrationError, ClipRef, batches, load_clip
from upstream_merged.permutation.placement import DEVICE_CHOICES, resolve_device  # noqa: F401 (re-exported)
from upstream_merged.permutation.spec import PermutationSpec, Probe
from upstream_merged.upstream.base import to_native_rate
from upstream_merged.upstream.hubert import hubert_model_input

logger = logging.getLogger(__name__)

SILENCE_PEAK = 1e-5  # a clip whose samples all stay below this is silent and skipped
PRIME_SECONDS = 1.0  # audio forwarded to choose the accumulators' reference shift (near the mean is all it needs)


class _EveryProbeFired(Exception):
    """Raised by the last probe hook of a forward: nothing after it feeds a statistic, so the forward stops there."""


@dataclass
class _Chunk:
    """One forward's worth of clips: both models' inputs, the frames kept per grid, and the rows each model's hooks captured."""

    inputs: List[Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]]]  # per model; None once forwarded
    selection: Dict[Tuple[int, bool], Tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    frames: Dict[Tuple[int, bool], int] = field(default_factory=dict)
    captured: Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]] = field(default_factory=lambda: ({}, {}))
    fired: Tuple[Set[str], Set[str]] = field(default_factory=lambda: (set(), set()))


@dataclass
class CalibrationResult:
    """Statistics per group (one accumulator per probe site) and what the pass consumed."""

    moments: Dict[str, List[CrossMoments]]
    clips: int = 0
    silent: int = 0
    too_short: int = 0
    seconds: float = 0.0
    skipped: List[str] = field(default_factory=list)
    skipped_index: List[int] = field(default_factory=list)  # global clip index of each skipped entry
    sources: Dict[str, int] = field(default_factory=dict)  # clips used per source (dataset, dir, synthetic kind ...)

    def skip(self, index: int, text: str) -> None:
        """Record a skipped clip."""
        self.skipped.append(text)
        self.skipped_index.append(index)

    def summary(self) -> dict:
        """Plain-data description for the merge report."""
        frames = {group: int(m[0].count) for group, m in self.moments.items() if m}
        return {"clips_used": self.clips, "clips_skipped_silent": self.silent, "clips_skipped_too_short": self.too_short,
                "seconds": round(self.seconds, 3), "clips_per_source": dict(sorted(self.sources.items())),
                "frames_per_group": frames, "skipped_examples": self.skipped[:5]}


@dataclass(frozen=True)
class Shard:
    """This process's part of a sharded calibration: global batches ``k`` with ``k % world == rank``."""

    rank: int
    world: int
    group: Optional[object] = None  # torch.distributed process group (None: the default group)

    def __post_init__(self):
        if not 0 <= self.rank < self.world:
            raise ValueError(f"shard rank {self.rank} is outside world size {self.world}")


def to_device(waves: Sequence[np.ndarray], device: torch.device) -> List[torch.Tensor]:
    """Host waves as tensors on ``device``: one host-to-device copy for them all (views of it), none on the CPU."""
    if torch.device(device).type == "cpu" or not waves:
        return [torch.from_numpy(wave) for wave in waves]
    moved = torch.from_numpy(np.concatenate(waves)).to(device)
    return list(torch.split(moved, [len(wave) for wave in waves]))


def forward_chunks(lengths: Sequence[int], max_batch_seconds: Optional[float], rate: int) -> List[List[int]]:
    """Indices of a batch split so no forward pads more than ``max_batch_seconds`` of audio (activation memory stays flat)."""
    if max_batch_seconds is None:
        return [list(range(len(lengths)))] if lengths else []
    limit = max_batch_seconds * rate
    chunks: List[List[int]] = []
    current: List[int] = []
    for index, length in enumerate(lengths):
        longest = max([lengths[i] for i in current] + [length])
        if current and longest * (len(current) + 1) > limit:
            chunks.append(current)
            current = []
        current.append(index)
    return chunks + ([current] if current else [])


def _nothing() -> None:
    """No one is waiting for this model's CNN."""


def _in_inference_mode(job: Callable[[], None]) -> None:
    """Run ``job`` in inference mode (a thread-local switch: the pass's threads set it for themselves)."""
    with torch.inference_mode():
        job()


def _forward_until_done(model: torch.nn.Module, inputs: torch.Tensor, mask: Optional[torch.Tensor]) -> None:
    """Forward ``model``; a forward whose last probe site has fired stops there."""
    try:
        model(inputs, attention_mask=mask)
    except _EveryProbeFired:
        pass


def _as_frames(tensor: torch.Tensor, probe: Probe) -> torch.Tensor:
    """Activations as (B, T, C)."""
    if isinstance(tensor, (tuple, list)):
        tensor = tensor[0]
    return tensor.transpose(1, 2) if probe.channel_dim == 1 else tensor


@contextmanager
def _hooks(model: torch.nn.Module, probes: Sequence[Tuple[str, Probe]], sink: Callable[[str, Probe, torch.Tensor], None]) -> Iterator[None]:
    """Forward (pre-)hooks on every probed module of ``model`` that pass activations to ``sink``."""
    modules = dict(model.named_modules())
    by_module: Dict[Tuple[str, str], List[Tuple[str, Probe]]] = {}
    for key, probe in probes:
        if probe.module not in modules:
            raise CalibrationError(f"probe site {probe.module!r} does not exist in the model")
        by_module.setdefault((probe.module, probe.io), []).append((key, probe))
    handles = []
    for (name, io), entries in by_module.items():
        def fire(tensor, entries=entries):
            for key, probe in entries:
                sink(key, probe, tensor)
        if io == "input":
            handles.append(modules[name].register_forward_pre_hook(lambda _m, args, fire=fire: fire(args[0])))
        else:
            handles.append(modules[name].register_forward_hook(lambda _m, _args, out, fire=fire: fire(out)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class Calibrator:
    """Accumulates cross-correlation statistics between two HuBERT-family models at a spec's probe sites."""

    def __init__(self, encoder_a, encoder_b, spec: PermutationSpec, groups: Sequence[str],
                 frames_per_second: Optional[float], seed: int, cnn_frames_per_second: Optional[float] = None,
                 max_batch_seconds: Optional[float] = None, device: Optional[torch.device] = None,
                 cross_dtype: torch.dtype = torch.float64, shard: Optional[Shard] = None):
        if encoder_a.model is encoder_b.model:
            raise ValueError("calibration needs two distinct model objects (hooks would fire twice); load b separately")
        self.a, self.b = encoder_a, encoder_b
        self.spec = spec
        self.groups = list(groups)
        self.cap = frames_per_second
        self.cnn_cap = cnn_frames_per_second
        self.max_batch_seconds = max_batch_seconds
        self.seed = seed
        self.device = torch.device(device) if device is not None else next(encoder_a.model.parameters()).device
        self.shard = shard
        config = encoder_a.model.config
        self.kernels, self.strides = list(config.conv_kernel), list(config.conv_stride)
        self.probes: List[Tuple[str, Probe]] = []
        self.moments: Dict[str, List[CrossMoments]] = {}
        for name in self.groups:
            group = spec.groups[name]
            self.moments[name] = []
            for k, probe in enumerate(group.probes):
                self.probes.append((f"{name}#{k}", probe))
                self.moments[name].append(CrossMoments(group.size, group.size, device=self.device,
                                                       cross_dtype=cross_dtype))
        self._accumulator = {f"{name}#{k}": m for name in self.groups for k, m in enumerate(self.moments[name])}
        self._current: List[Optional[_Chunk]] = [None, None]  # the chunk model a / b is forwarding
        self._priming = False
        self._pool: Optional[ThreadPoolExecutor] = None  # set for the pass when a and b run side by side
        self._head_done: List[Callable[[], None]] = [_nothing, _nothing]  # model a's / b's CNN is over (side by side)
        self._shares = self._split_sites()
        self._fed_in_b = set(self._accumulator)  # sites b's hooks feed at once (side by side: the second share only)
        self.min_samples = {rate: receptive_field(self.kernels, self.strides) for rate in (encoder_a.sample_rate, encoder_b.sample_rate)}

    # -- frame selection ------------------------------------------------------------------------
    def _keep_fraction(self, key: Tuple[int, bool]) -> float:
        depth, conv = key
        cap = self.cnn_cap if conv else self.cap
        if cap is None:
            return 1.0
        rate = self.a.sample_rate / float(np.prod(self.strides[:depth]))
        return min(1.0, cap / rate)

    @staticmethod
    def _key(probe: Probe) -> Tuple[int, bool]:
        """Sites share a frame selection when they share a frame grid and a cap (CNN sites have their own)."""
        return probe.conv_depth, probe.channel_dim == 1

    def _split_sites(self) -> Tuple[List[str], List[str]]:
        """The probe sites in two shares of about equal co-moment GEMM cost (channels squared x frames kept per second).

        The first share (fed by the helper thread once both forwards are done) takes the widest sites, the most
        GEMM work per captured byte; the second is fed while b forwards, so its rows are held only briefly.
        """
        costs, widths = {}, {}
        for name in self.groups:
            group = self.spec.groups[name]
            for k, probe in enumerate(group.probes):
                rate = self.a.sample_rate / float(np.prod(self.strides[:probe.conv_depth]))
                costs[f"{name}#{k}"] = group.size ** 2 * rate * self._keep_fraction(self._key(probe))
                widths[f"{name}#{k}"] = group.size
        shares: Tuple[List[str], List[str]] = ([], [])
        half, load = sum(costs.values()) / 2, 0.0
        for key in sorted(costs, key=lambda k: (-widths[k], -costs[k])):
            into_first = load + costs[key] / 2 <= half
            shares[0 if into_first else 1].append(key)
            load += costs[key] if into_first else 0.0
        return shares

    def _prepare(self, refs: Sequence[ClipRef], waves_a: Sequence[torch.Tensor], waves_b: Sequence[torch.Tensor],
                 keep_all: bool = False) -> "_Chunk":
        """One forward's model inputs and, per frame grid, the (clip row, frame) pairs kept: valid frames, subsampled per clip with its own seed."""
        input_a, mask_a = hubert_model_input(list(waves_a), self.a.normalize)
        input_b, mask_b = hubert_model_input(list(waves_b), self.b.normalize)
        chunk = _Chunk(inputs=[(input_a, mask_a), (input_b, mask_b)])
        lengths, padded = [len(wave) for wave in waves_a], input_a.shape[1]
        for key in sorted({self._key(probe) for _, probe in self.probes}):
            depth = key[0]
            fraction = 1.0 if keep_all else self._keep_fraction(key)
            rows, frames = [], []
            for row, (ref, length) in enumerate(zip(refs, lengths)):
                valid = conv_output_length(length, self.kernels[:depth], self.strides[:depth])
                kept = np.arange(valid)
                if fraction < 1.0:
                    kept = kept[np.random.default_rng([self.seed, ref.index, depth, int(key[1])]).random(valid) < fraction]
                rows.append(np.full(len(kept), row))
                frames.append(kept)
            chunk.selection[key] = (torch.from_numpy(np.concatenate(rows)).long().to(self.device),
                                    torch.from_numpy(np.concatenate(frames)).long().to(self.device))
            chunk.frames[key] = conv_output_length(padded, self.kernels[:depth], self.strides[:depth])
        return chunk

    # -- hooks ----------------------------------------------------------------------------------
    def _pick(self, tensor: torch.Tensor, probe: Probe, chunk: "_Chunk") -> torch.Tensor:
        """The selected frames of a site's activation as (N, C) float32, gathered without copying the whole tensor."""
        if isinstance(tensor, (tuple, list)):
            tensor = tensor[0]
        expected = chunk.frames[self._key(probe)]
        time_dim = 2 if probe.channel_dim == 1 else 1
        if tensor.shape[time_dim] != expected:  # B runs at another native rate: align its frames onto A's grid
            frames = _as_frames(tensor, probe).transpose(1, 2)
            tensor = F.interpolate(frames, size=expected, mode="linear", align_corners=False).transpose(1, 2)
            time_dim = 1
        rows, frames = chunk.selection[self._key(probe)]
        picked = tensor[rows, :, frames] if time_dim == 2 else tensor[rows, frames]  # (N, C)
        return picked.float()

    def _sink_a(self, key: str, probe: Probe, tensor: torch.Tensor) -> None:
        self._sink(0, key, probe, tensor)

    def _sink_b(self, key: str, probe: Probe, tensor: torch.Tensor) -> None:
        self._sink(1, key, probe, tensor)

    def _sink(self, side: int, key: str, probe: Probe, tensor: torch.Tensor) -> None:
        chunk = self._current[side]
        rows = self._pick(tensor, probe, chunk)
        chunk.fired[side].add(key)
        if side == 1 and not self._priming and key in self._fed_in_b and key in chunk.captured[0]:
            self._accumulator[key].update(chunk.captured[0].pop(key), rows)  # a's rows go as soon as b's arrive
        else:
            chunk.captured[side][key] = rows
        self._stop_when_every_probe_fired(len(chunk.fired[side]))

    def _stop_when_every_probe_fired(self, fired: int) -> None:  # fired: sites this forward has captured
        # the rest of the forward (a CNN-only merge: the whole transformer) would compute nothing we use
        if fired == len(self.probes):
            raise _EveryProbeFired

    # -- the pass -------------------------------------------------------------------------------
    @without_global_rng_effects  # transformers' HuBERT encoder draws torch.rand([]) (layerdrop) on every forward
    def run(self, refs: Sequence[ClipRef], clip_seconds: float, batch_size: int, progress: bool = True) -> CalibrationResult:
        """Calibrate on ``refs`` (with a shard: this rank's global batches, then all-reduce across the shard's group)."""
        everything = list(batches(refs, batch_size))  # global batches: the same forwards whatever the world size
        mine = everything if self.shard is None else everything[self.shard.rank::self.shard.world]
        result = CalibrationResult(self.moments)
        bar = tqdm(total=sum(len(b) for b in mine), unit="clip", desc="calibration", disable=not progress)
        with torch.inference_mode(), _hooks(self.a.model, self.probes, self._sink_a), \
                _hooks(self.b.model, self.probes, self._sink_b), self._side_by_side():
            self._prime(refs, clip_seconds)
            release_free_memory()  # once: the prime's all-frame buffers would otherwise fragment the pass's heap
            for batch in mine:
                self._step(batch, clip_seconds, result)
                bar.update(len(batch))
        bar.close()
        self._reduce(result)
        self._check(result)
        return result

    @contextmanager
    def _side_by_side(self) -> Iterator[None]:
        """On a CPU with >= 2 torch threads: a and b forward side by side, each on half the threads (see module doc)."""
        threads = torch.get_num_threads()
        if self.device.type != "cpu" or threads < 2:
            yield
            return
        share_the_heap_with_new_threads()  # else the helper's own arena keeps a second forward's freed activations
        unmap_large_buffers()  # the CNNs' largest activations would otherwise leave resident holes in the shared heap
        handles = []  # a model without a feature_extractor counts as all CNN: the other waits for its whole forward
        for side, encoder in enumerate((self.a, self.b)):
            cnn = getattr(encoder.model, "feature_extractor", None)
            if cnn is not None:
                handles.append(cnn.register_forward_hook(lambda *_, side=side: self._head_done[side]()))
        self._fed_in_b = set(self._shares[1])
        try:
            with half_the_threads_each(1, "calibration") as self._pool:
                yield
        finally:
            self._pool = None
            self._fed_in_b = set(self._accumulator)
            for handle in handles:
                handle.remove()

    def _load(self, batch: Sequence[ClipRef], clip_seconds: float) -> List[Tuple[Optional[torch.Tensor], int]]:
        """(wave on the device, rate) per clip, decoded on the host and moved in one copy; (None, rate) for a silent clip."""
        loaded = [load_clip(ref, clip_seconds) for ref in batch]
        audible = [wave.size > 0 and float(np.abs(wave).max()) >= SILENCE_PEAK for wave, _ in loaded]
        moved = iter(to_device([wave for (wave, _), keep in zip(loaded, audible) if keep], self.device))
        return [(next(moved) if keep else None, rate) for (_, rate), keep in zip(loaded, audible)]

    def _native(self, ref: ClipRef, tensor: Optional[torch.Tensor], rate: int):
        """(wave at a's rate, wave at b's rate, seconds) of a loaded clip, or (None, reason, seconds) when it is unusable."""
        name = ref.path or f"{ref.kind}#{ref.seed}"
        if tensor is None:
            return None, f"{name}: silent", 0.0
        native_a, native_b = to_native_rate(tensor, rate, self.a.sample_rate), to_native_rate(tensor, rate, self.b.sample_rate)
        if len(native_a) < self.min_samples[self.a.sample_rate] or len(native_b) < self.min_samples[self.b.sample_rate]:
            return None, f"{name}: {len(tensor) / rate:.3f} s is shorter than one frame", 0.0
        return native_a, native_b, len(tensor) / rate

    def _prime(self, refs: Sequence[ClipRef], clip_seconds: float) -> None:
        """Set every accumulator's reference shift from the start of the first usable clip, forwarded alone, all frames.

        Every process of a sharded calibration primes on the same clip, so all ranks share one shift and
        their float32 batch products equal those of a one-process run bit for bit.
        """
        self._priming = True
        try:
            for seconds in dict.fromkeys((min(clip_seconds, PRIME_SECONDS), clip_seconds)):  # whole clips if every start is silent
                for ref in refs:
                    native_a, native_b, _ = self._native(ref, *self._load([ref], seconds)[0])
                    if native_a is None:
                        continue
                    self._forward_pair(self._prepare([ref], [native_a], [native_b], keep_all=True))
                    return
        finally:
            self._priming = False

    def _forward(self, side: int, chunk: "_Chunk") -> None:
        """Forward ``chunk`` through model a (side 0) or b (side 1); the hooks capture its selected frames."""
        self._current[side] = chunk
        try:
            _forward_until_done((self.a, self.b)[side].model, *chunk.inputs[side])
        finally:
            self._current[side] = None
            chunk.inputs[side] = None  # the audio is not needed again

    def _check_sites(self, chunk: "_Chunk") -> None:
        fired_a, fired_b = chunk.fired
        for model, extra in (("a", fired_a - fired_b), ("b", fired_b - fired_a)):
            if extra:  # the models do not run the spec's sites alike
                other = "b" if model == "a" else "a"
                raise CalibrationError(f"probe site(s) {', '.join(sorted(extra))} fired in model {model} but not in model {other}")

    def _feed(self, chunk: "_Chunk", keys: Sequence[str]) -> None:
        """Add the chunk's rows of these sites to their accumulators (and let go of them)."""
        captured_a, captured_b = chunk.captured
        for key in keys:
            if key in captured_a and key in captured_b:  # not yet fed by b's hook
                self._accumulator[key].update(captured_a.pop(key), captured_b.pop(key))

    def _forward_pair(self, chunk: "_Chunk") -> None:
        """Forward one chunk of clips through a, then b, and feed (or, priming, shift) every site's accumulator."""
        self._forward(0, chunk)
        self._forward(1, chunk)
        self._check_sites(chunk)
        if self._priming:
            for key, rows_a in chunk.captured[0].items():
                self._accumulator[key].set_shift(rows_a.mean(0), chunk.captured[1][key].mean(0))
        else:
            self._feed(chunk, list(chunk.captured[0]))

    def _forward_side_by_side(self, makers: Sequence[Callable[[], "_Chunk"]]) -> None:
        """Forward each chunk through a on the helper thread and b here, their CNNs taking turns (see core.staggered).

        a always reaches a chunk first, so the helper makes its inputs; a chunk is dropped once both shares are fed.
        """
        chunks: Dict[int, _Chunk] = {}
        fed = {j: 2 for j in range(len(makers))}
        lock = threading.Lock()

        def forward(side: int, j: int, head_done: Callable[[], None]) -> None:
            if side == 0:
                chunks[j] = makers[j]()
            self._head_done[side] = head_done
            try:
                self._forward(side, chunks[j])
            finally:
                self._head_done[side] = _nothing

        def feed(share: int, j: int) -> None:
            self._feed(chunks[j], self._shares[share])
            with lock:
                fed[j] -= 1
                if not fed[j]:
                    del chunks[j]

        run_staggered(len(makers), self._pool, lead=lambda j, done: forward(0, j, done),
                      follow=lambda j, done: forward(1, j, done), check=lambda j: self._check_sites(chunks[j]),
                      finish_lead=partial(feed, 0), finish_follow=partial(feed, 1), helper_context=_in_inference_mode)

    def _step(self, batch: Sequence[ClipRef], clip_seconds: float, result: CalibrationResult) -> None:
        used, waves_a, waves_b = [], [], []
        for ref, (tensor, rate) in zip(batch, self._load(batch, clip_seconds)):
            native_a, native_b, seconds = self._native(ref, tensor, rate)
            if native_a is None:
                if native_b.endswith("silent"):
                    result.silent += 1
                else:
                    result.too_short += 1
                result.skip(ref.index, native_b)
                continue
            used.append(ref)
            result.sources[ref.source or ref.kind] = result.sources.get(ref.source or ref.kind, 0) + 1
            waves_a.append(native_a)
            waves_b.append(native_b)
            result.seconds += seconds
        result.clips += len(used)
        # each forward's inputs are made when it comes up (one or two at a time, not the whole batch's at once)
        makers = [partial(self._prepare, [used[i] for i in chunk], [waves_a[i] for i in chunk], [waves_b[i] for i in chunk])
                  for chunk in forward_chunks([len(w) for w in waves_a], self.max_batch_seconds, self.a.sample_rate)]
        if self._pool is not None:
            self._forward_side_by_side(makers)
            return
        for make in makers:
            self._forward_pair(make())

    def _reduce(self, result: CalibrationResult) -> None:
        """Sum counters and merge accumulators across the shard's group (nothing without a shard)."""
        if self.shard is None or self.shard.world == 1:
            return
        import torch.distributed as dist

        counters = torch.tensor([result.clips, result.silent, result.too_short, result.seconds], dtype=torch.float64,
                                device=self.device)  # NCCL reduces device tensors only
        dist.all_reduce(counters, group=self.shard.group)
        values = counters.tolist()
        result.clips, result.silent, result.too_short = (int(v) for v in values[:3])
        result.seconds = float(values[3])
        gathered: List[object] = [None] * self.shard.world
        dist.all_gather_object(gathered, (list(zip(result.skipped_index, result.skipped)), result.sources),
                               group=self.shard.group)
        merged = sorted(entry for part, _ in gathered for entry in part)  # in clip order, as one process lists them
        result.skipped_index, result.skipped = [i for i, _ in merged], [text for _, text in merged]
        result.sources = {}
        for _, sources in gathered:
            for name, count in sources.items():
                result.sources[name] = result.sources.get(name, 0) + count
        for moments in self.moments.values():
            for accumulator in moments:
                accumulator.all_reduce(group=self.shard.group, common_shift=True)  # every rank primed alike

    def _check(self, result: CalibrationResult) -> None:
        if result.clips == 0:
            raise CalibrationError(
                f"no usable calibration audio: {result.silent} clip(s) silent (peak < {SILENCE_PEAK}), "
                f"{result.too_short} shorter than one frame ({self.min_samples[self.a.sample_rate]} samples); "
                "point calibration.dirs/manifest at real audio or use calibration.synthetic"
            )
        for name, moments in self.moments.items():
            for probe, accumulator in zip(self.spec.groups[name].probes, moments):
                if accumulator.count < 2:
                    raise CalibrationError(
                        f"probe site {probe.module} of group {name!r} saw {int(accumulator.count)} frame(s); "
                        "use more or longer calibration clips, or raise calibration.frames_per_second"
                    )
