"""The correlation-permutation merge end to end: load, check, calibrate, match, permute B, interpolate, write."""
from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import torch

from upstream_merged.core.interpolate import interpolate_state_dicts
from upstream_merged.core.rng import seeded_by_recipe
from upstream_merged.models.hubert import LoadedEncoder, load_hubert_family
from upstream_merged.core.memory import release_free_memory
from upstream_merged.permutation.apply import permute_model_
from upstream_merged.permutation.audio import ClipRef, list_clips, load_clip
from upstream_merged.permutation.calibration import Calibrator, Shard
from upstream_merged.permutation.placement import launch_place, resolve_batch_seconds, resolve_device
from upstream_merged.permutation.matching import GroupMatch, match
from upstream_merged.permutation.presets import PRESETS
from upstream_merged.permutation.report import default_heatmap_groups
from upstream_merged.permutation.spec import PermutationSpec, spec_for_model
from upstream_merged.recipe import recipe_yaml
from upstream_merged.sources import resolve_source
from upstream_merged.upstream.base import to_native_rate
from upstream_merged.upstream.hubert import hubert_model_input

logger = logging.getLogger(__name__)

REFERENCE_RATE = 16000
DRIFT_SECONDS = 2.0  # audio per clip used to measure how far the permuted b moved (a check, kept cheap)
# Config keys that change the computation without changing any tensor shape: they must agree too.
ARCHITECTURE_KEYS = (
    "num_attention_heads", "num_conv_pos_embedding_groups", "do_stable_layer_norm", "feat_extract_norm",
    "conv_kernel", "conv_stride", "hidden_act", "feat_extract_activation", "conv_bias", "feat_proj_layer_norm",
    "conv_pos_batch_norm", "num_conv_pos_embeddings",
)
# Layout keys of the CNN feature encoder alone. They may differ between a and b (HuBERT Large: layer norm in
# every conv, conv biases; MERT-v1-330M: one group norm, no biases): the merged model then keeps a's whole CNN
# unmerged, and alignment + interpolation cover the feature projection and the transformer (CNN policy "from_a").
CNN_LAYOUT_KEYS = ("feat_extract_norm", "conv_bias")
FEATURE_ENCODER = "feature_extractor."
OUTPUT_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "permutations.safetensors",
                "merge_report.json", "recipe.yaml", "README.md", "correlation_heatmaps.png")


class MergeError(ValueError):
    """The two models cannot be merged (the message names the first mismatch)."""


@dataclass
class Alignment:
    """Everything the matching produced."""

    spec: Optional[PermutationSpec]
    perms: Dict[str, torch.Tensor] = field(default_factory=dict)
    matches: List[GroupMatch] = field(default_factory=list)
    correlations: Dict[str, torch.Tensor] = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    seconds: Dict[str, float] = field(default_factory=dict)


def _same(value_a, value_b) -> bool:
    if isinstance(value_a, (list, tuple)) or isinstance(value_b, (list, tuple)):
        return list(value_a or []) == list(value_b or [])
    return value_a == value_b


def architecture_differences(model_a, model_b) -> Dict[str, tuple]:
    """Every architecture key (config) whose value differs between the two models: key -> (a's, b's)."""
    out = {}
    for key in ARCHITECTURE_KEYS:
        value_a, value_b = getattr(model_a.config, key, None), getattr(model_b.config, key, None)
        if not _same(value_a, value_b):
            out[key] = (value_a, value_b)
    return out


def cnn_policy(model_a, model_b) -> str:
    """``"merged"`` when the CNN layouts agree, ``"from_a"`` when only :data:`CNN_LAYOUT_KEYS` differ there."""
    return "from_a" if set(architecture_differences(model_a, model_b)) & set(CNN_LAYOUT_KEYS) else "merged"


def check_compatible(model_a, model_b, name_a: str = "a", name_b: str = "b") -> str:
    """The CNN policy (see :func:`cnn_policy`) if the models can be merged; else MergeError naming every difference.

    Architecture keys other than the CNN layout must agree; so must every tensor's name and shape, except the
    CNN's own norm and bias tensors when the layouts differ (a's CNN is kept whole then).
    """
    differences = architecture_differences(model_a, model_b)
    blocking = {key: values for key, values in differences.items() if key not in CNN_LAYOUT_KEYS}
    if blocking:
        listed = "; ".join(f"{key!r}: {name_a} has {a!r}, {name_b} has {b!r}" for key, (a, b) in blocking.items())
        raise MergeError(f"architecture mismatch in config key(s) {sorted(blocking)} ({listed}). Only the CNN "
                         f"layout keys {list(CNN_LAYOUT_KEYS)} may differ (the merge then keeps {name_a}'s CNN)")
    policy = cnn_policy(model_a, model_b)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    for key, tensor in state_a.items():
        if key not in state_b:
            if policy == "from_a" and key.startswith(FEATURE_ENCODER):
                continue  # a CNN norm or bias b's layout does not have: a's CNN is kept whole
            raise MergeError(f"architecture mismatch at parameter {key!r}: {name_b} has no such tensor")
        if tuple(state_b[key].shape) != tuple(tensor.shape):
            raise MergeError(f"architecture mismatch at parameter {key!r}: {name_a} {tuple(tensor.shape)} vs "
                             f"{name_b} {tuple(state_b[key].shape)}")
    extra = [key for key in state_b if key not in state_a and not (policy == "from_a" and key.startswith(FEATURE_ENCODER))]
    if extra:
        raise MergeError(f"architecture mismatch at parameter {extra[0]!r}: {name_a} has no such tensor")
    if policy == "from_a":
        logger.info("CNN layouts differ (%s): the merged model keeps %s's CNN feature encoder unmerged",
                    ", ".join(f"{k}: {differences[k][0]!r} vs {differences[k][1]!r}" for k in CNN_LAYOUT_KEYS
                              if k in differences), name_a)
    return policy


def feature_encoder_data(model_a, model_b, policy: str) -> dict:
    """What the merge report says about the CNN feature encoder (the policy and, for ``from_a``, the differing keys)."""
    if policy != "from_a":
        return {"policy": "merged"}
    differences = architecture_differences(model_a, model_b)
    return {"policy": "from_a",
            "differing_keys": {key: {"a": differences[key][0], "b": differences[key][1]}
                               for key in CNN_LAYOUT_KEYS if key in differences}}


def cnn_groups_to_skip(model, policy: str) -> List[str]:
    """CNN groups not worth calibrating: with a's CNN kept, only the last conv's channels (the feature projection's
    input basis) are aligned; the inner ones would only reorder b's discarded CNN."""
    if policy != "from_a":
        return []
    depth = len(model.config.conv_dim)
    return [f"cnn.{i}" for i in range(depth - 1)]


@contextmanager
def on_device(encoders: Sequence[LoadedEncoder], device: torch.device) -> Iterator[None]:
    """Move the encoders' models to ``device`` for the block and back to the CPU after it."""
    if device.type == "cpu":
        yield
        return
    for encoder in encoders:
        encoder.model.to(device)
    try:
        yield
    finally:
        for encoder in encoders:
            encoder.model.to("cpu")


def calibrate(encoder_a: LoadedEncoder, encoder_b: LoadedEncoder, components: Sequence[str], calibration, seed: int,
              progress: bool = True, refs: Optional[Sequence[ClipRef]] = None, device: Optional[torch.device] = None,
              shard: Optional[Shard] = None, skip: Sequence[str] = ()):
    """The calibration pass of ``align`` (spec, group names, result), on ``device`` (None: calibration.device).

    ``skip`` names groups of ``components`` left unaligned (see :func:`cnn_groups_to_skip`).
    """
    attention = "independent" if "qkv_independent" in components else "heads"
    spec = spec_for_model(encoder_a.model, attention=attention)
    names = [name for name in spec.select(components) if name not in set(skip)]
    refs = list(refs) if refs is not None else list_clips(calibration, seed)
    device = device if device is not None else resolve_device(calibration.device)
    dtype = torch.float32 if calibration.statistics_dtype == "float32" else torch.float64
    with on_device((encoder_a, encoder_b), device):
        calibrator = Calibrator(encoder_a, encoder_b, spec, names, calibration.frames_per_second, seed,
                                cnn_frames_per_second=calibration.cnn_frames_per_second,
                                max_batch_seconds=resolve_batch_seconds(calibration.max_batch_seconds, device),
                                device=device, cross_dtype=dtype, shard=shard)
        result = calibrator.run(refs, calibration.clip_seconds, calibration.batch_size, progress=progress)
    return spec, names, result


def align(encoder_a: LoadedEncoder, encoder_b: LoadedEncoder, components: Sequence[str], calibration, seed: int,
          progress: bool = True, refs: Optional[Sequence[ClipRef]] = None, keep: Optional[Sequence[str]] = None,
          device: Optional[torch.device] = None, shard: Optional[Shard] = None, skip: Sequence[str] = ()) -> Alignment:
    """Calibrate both models and match every group of ``components`` (B onto A), except the groups in ``skip``.

    ``keep`` names the groups whose correlation matrices are returned (None: all of them). The pass runs
    on ``device`` (None: ``calibration.device``); with ``shard`` this process calibrates its share of the
    clips and the statistics are all-reduced across the shard's group (only then is any collective called).
    """
    if not components:
        return Alignment(spec=None)
    start = time.perf_counter()
    spec, names, result = calibrate(encoder_a, encoder_b, components, calibration, seed, progress=progress, refs=refs,
                                    device=device, shard=shard, skip=skip)
    calibrated = time.perf_counter()
    summary = result.summary()
    moments = result.moments
    del result  # match() releases the accumulators (the largest allocation) one by one
    release_free_memory()  # the pass's freed activations would otherwise stay resident under the matching
    perms, matches, correlations = match(spec, moments, keep=keep)
    seconds = {"calibration": calibrated - start, "matching": time.perf_counter() - calibrated}
    return Alignment(spec, perms, matches, correlations, summary, seconds)


def permute_b(encoder_b: LoadedEncoder, alignment: Alignment, refs: Sequence[ClipRef], clip_seconds: float) -> dict:
    """Permute B's weights in place (tensor by tensor) and return how far its hidden states moved (residual basis undone).

    With no usable ``refs`` B is permuted all the same and the drift is ``{}``.
    """
    spec = _own_spec(encoder_b.model, alignment.spec)
    waves = []
    for ref in refs:
        wave, rate = load_clip(ref, clip_seconds)
        if wave.size and abs(wave).max() > 0:
            waves.append(to_native_rate(torch.from_numpy(wave), rate, encoder_b.sample_rate))
    if not waves:
        permute_model_(encoder_b.model, spec, alignment.perms)
        return {}
    inputs, mask = hubert_model_input(waves, encoder_b.normalize)
    with torch.inference_mode():
        before = encoder_b.model(inputs, attention_mask=mask, output_hidden_states=True).hidden_states
    permute_model_(encoder_b.model, spec, alignment.perms)
    with torch.inference_mode():
        after = encoder_b.model(inputs, attention_mask=mask, output_hidden_states=True).hidden_states
    basis = alignment.perms.get("residual", torch.arange(before[0].shape[-1]))
    relative = max(float((new - old[..., basis]).norm() / old.norm().clamp_min(1e-12)) for new, old in zip(after, before))
    absolute = max(float((new - old[..., basis]).abs().max()) for new, old in zip(after, before))
    symmetry = all(m.symmetry for m in alignment.matches)
    if symmetry and relative > 1e-4:
        logger.warning("permuted model B moved by %.2e although every permutation is declared a symmetry", relative)
    return {"relative_error": relative, "max_abs_error": absolute, "symmetry": symmetry, "clips": len(waves)}


def _own_spec(model, spec: PermutationSpec) -> PermutationSpec:
    """``model``'s own spec with the attention groups of ``spec`` (b's CNN layout may differ from a's)."""
    independent = any(group.component == "qkv_independent" for group in spec.groups.values())
    return spec_for_model(model, attention="independent" if independent else "heads")


def interpolate_into(model: torch.nn.Module, other: Dict[str, torch.Tensor], alpha: float,
                     keep_prefixes: Sequence[str] = ()) -> None:
    """``model``'s tensors become ``alpha * model + (1 - alpha) * other``, one tensor at a time (no merged copy).

    Each tensor goes through :func:`interpolate_state_dicts`, so the bytes equal a whole-dict interpolation.
    Tensors whose names start with one of ``keep_prefixes`` keep ``model``'s values (CNN policy ``from_a``).
    """
    keep = tuple(keep_prefixes)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if keep and name.startswith(keep):
                continue
            tensor.copy_(interpolate_state_dicts({name: tensor}, {name: other[name]}, alpha)[name])


def components_groups(encoder: LoadedEncoder, components: Sequence[str]) -> List[str]:
    """Names of the groups ``components`` align in this model."""
    if not components:
        return []
    attention = "independent" if "qkv_independent" in components else "heads"
    return spec_for_model(encoder.model, attention=attention).select(components)


def load_sources(recipe) -> tuple[LoadedEncoder, LoadedEncoder, Path, Path]:
    """Load sources a and b strictly and check that they can be merged (see :func:`cnn_policy` for the CNN)."""
    dirs = [resolve_source(recipe.sources[role], what=f"recipe source {role}", flag=f"sources.{role}:") for role in ("a", "b")]
    encoder_a, encoder_b = (load_hubert_family(d) for d in dirs)
    if encoder_a.sample_rate != REFERENCE_RATE:
        raise MergeError(f"source a ({recipe.sources['a']}) runs at {encoder_a.sample_rate} Hz; the reference must be a "
                         f"{REFERENCE_RATE} Hz model (swap sources a and b)")
    check_compatible(encoder_a.model, encoder_b.model, f"a ({recipe.sources['a']})", f"b ({recipe.sources['b']})")
    return encoder_a, encoder_b, dirs[0], dirs[1]


@seeded_by_recipe  # seeded by recipe.seed; the caller's global RNG state is left as it was
def build(recipe, out_dir: Path, recipe_text: Optional[str] = None, progress: bool = True,
          timings: Optional[dict] = None, device: Optional[str] = None, shard: Optional[Shard] = None) -> Path:
    """Run the merge of ``recipe`` and write the finished output directory ``out_dir``.

    OUT/recipe.yaml is always the effective recipe (``recipe_text`` is accepted for the shared builder
    signature and ignored), so ``merge OUT/recipe.yaml OUT2`` rebuilds the same bytes. Timings, which
    would differ between runs, go to the log and into ``timings`` when a dict is given, not into OUT.
    ``device`` overrides ``calibration.device`` without being recorded (the result does not depend on
    it); ``shard`` makes this the writing rank (0) of a sharded calibration (see :func:`calibrate_shard`).
    """
    from safetensors.torch import save_file

    from upstream_merged.permutation import report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    recipe = recipe.effective()
    _, components, alpha = recipe.settings()
    setting = recipe.preset or "custom"
    encoder_a, encoder_b, dir_a, _ = load_sources(recipe)
    policy = cnn_policy(encoder_a.model, encoder_b.model)
    feature_encoder = feature_encoder_data(encoder_a.model, encoder_b.model, policy)
    skip = cnn_groups_to_skip(encoder_a.model, policy)
    refs = list_clips(recipe.calibration, recipe.seed) if components else []
    heatmaps = recipe.report.heatmap_groups
    groups = [name for name in components_groups(encoder_a, components) if name not in skip]
    keep = heatmaps if heatmaps is not None else default_heatmap_groups(groups)
    target = resolve_device(device or recipe.calibration.device, None if shard is None else launch_place())
    alignment = align(encoder_a, encoder_b, components, recipe.calibration, recipe.seed, progress=progress, refs=refs,
                      keep=keep, device=target, shard=shard, skip=skip)
    # the heatmaps need only the alignment: a second thread draws them while b is permuted, merged and written
    # (leaving the block waits for it, also when the writing fails, so nothing is drawn into a removed OUT)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="heatmaps") as painter:
        heatmap_png = painter.submit(report.write_heatmaps, out_dir, alignment, recipe.report.heatmap_groups,
                                     recipe.report.heatmap_units)
        drift: dict = {}
        if alignment.perms:  # b's own tensors are permuted one at a time: no second copy of the model exists
            drift = permute_b(encoder_b, alignment, refs[: recipe.calibration.drift_clips],
                              min(recipe.calibration.clip_seconds, DRIFT_SECONDS))
        interpolate_into(encoder_a.model, encoder_b.model.state_dict(), alpha,
                         keep_prefixes=(FEATURE_ENCODER,) if policy == "from_a" else ())
        del encoder_b  # dead from here on: the checks and the writing run with one model in memory
        release_free_memory()
        from upstream_merged.models.checkpoint import check_finite

        check_finite(encoder_a.model.state_dict(), f"permutation merge into {out_dir}", "merged")
        encoder_a.model.save_pretrained(str(out_dir), safe_serialization=True)
        preprocessor = dir_a / "preprocessor_config.json"
        if preprocessor.is_file():
            shutil.copyfile(preprocessor, out_dir / "preprocessor_config.json")
        save_file({name: perm.contiguous() for name, perm in sorted(alignment.perms.items())},
                  str(out_dir / "permutations.safetensors"),
                  # one metadata key: safetensors writes its header from a hash map, so several keys reorder between runs
                  metadata={"convention": f"new[i] = old[perm[i]] along every axis of model b mapped to the group ({setting})"})
        (out_dir / "recipe.yaml").write_text(recipe_yaml(recipe))
        data = report.report_data(recipe, components, alpha, alignment, drift, feature_encoder)
        report.write_report(out_dir, data)
        report.write_model_card(out_dir, data)
    heatmap_png.result()  # re-raises a drawing error
    alignment.seconds["total"] = time.perf_counter() - start
    if timings is not None:
        timings.update(alignment.seconds, lap_seconds={m.name: m.lap_seconds for m in alignment.matches})
    logger.info("merged %s into %s in %.1f s (calibration %.1f s, matching %.1f s)", setting, out_dir,
                alignment.seconds["total"], alignment.seconds.get("calibration", 0.0), alignment.seconds.get("matching", 0.0))
    return out_dir


@seeded_by_recipe
def calibrate_shard(recipe, shard: Shard, device: Optional[str] = None) -> None:
    """A non-writing rank of a sharded merge: calibrate this rank's clips and join the all-reduce (rank 0 builds)."""
    recipe = recipe.effective()
    _, components, _ = recipe.settings()
    if not components:
        return
    encoder_a, encoder_b, _, _ = load_sources(recipe)
    policy = cnn_policy(encoder_a.model, encoder_b.model)
    target = resolve_device(device or recipe.calibration.device, launch_place())
    calibrate(encoder_a, encoder_b, components, recipe.calibration, recipe.seed, progress=False,
              device=target, shard=shard, skip=cnn_groups_to_skip(encoder_a.model, policy))


def plan(recipe) -> str:
    """What :func:`build` would do, as text (nothing is read from the network or written)."""
    recipe = recipe.effective()
    _, components, alpha = recipe.settings()
    preset = PRESETS.get(recipe.preset or "")
    if preset is None:
        setting = "custom (equals no preset, so no paper reference score)"
    elif preset.paper_id:
        setting = (f"{preset.name} (paper Table I ID {preset.paper_id}; the paper's reference score for it: "
                   f"{preset.paper_average}) - {preset.description}")
    else:
        setting = f"{preset.name} (not in the paper) - {preset.description}"
    symmetric = "qkv_independent" not in components
    calibration = recipe.calibration
    sources = []
    if calibration.synthetic is not None:
        s = calibration.synthetic
        sources.append(f"synthetic {s.clips} clips x {s.seconds} s ({s.speech_share:.0%} speech-like)")
    sources += [f"dir {d}" for d in calibration.dirs]
    sources += [f"dataset {d.id}{'/' + d.config if d.config else ''}:{d.split} ({d.clips} clips"
                f"{', ' + d.domain if d.domain else ''}; {'streamed' if d.streaming else 'downloaded'}, cached)"
                for d in calibration.datasets]
    if calibration.manifest:
        sources.append(f"manifest {calibration.manifest}")
    limits = [f"batch {calibration.batch_size}", f"clips cropped to {calibration.clip_seconds} s",
              f"device {calibration.device}", f"{calibration.statistics_dtype} statistics"]
    if calibration.max_clips:
        limits.append(f"at most {calibration.max_clips} clips")
    if calibration.max_seconds:
        limits.append(f"at most {calibration.max_seconds} s in total")
    cap = calibration.frames_per_second
    limits.append(f"up to {cap:g} frames/s kept per site" if cap else "every frame kept")
    lines = [
        "permutation merge (dry run: nothing is written)",
        f"  a (reference, kept in place, weight {alpha:g}): {recipe.sources['a']}",
        f"  b (aligned onto a, weight {1 - alpha:g}):        {recipe.sources['b']}",
        f"  setting: {setting}",
        f"  aligned components: {', '.join(components) if components else 'none (plain interpolation)'}",
        "  " + ("every permutation preserves b's function" if symmetric else
                "WARNING: q/k/v permuted independently is NOT a symmetry; b's outputs move (see merge_report.json)"),
        f"  seed: {recipe.seed}",
    ]
    if components:
        lines.append(f"  calibration: {'; '.join(sources)}; {', '.join(limits)}")
    lines.append(f"  would write: {', '.join(OUTPUT_FILES if components else [f for f in OUTPUT_FILES if f != 'correlation_heatmaps.png'])}")
    return "\n".join(lines)

