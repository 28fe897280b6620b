"""Permutation symmetries of a HuBERT-architecture encoder, declared as data.

A :class:`PermutationSpec` maps every tensor of the state dict to one entry per axis: ``None`` (the axis
never moves) or an :class:`Axis` naming the permutation group that reorders it. The reverse index (group
-> tensors) is derived. Groups may be *block-structured*: a permutation of such a group must map whole
blocks (attention heads, groups of the positional conv) onto blocks; groups with the same ``tie`` share
one block mapping (q/k and v/out of one layer move their heads together).

Permutation convention everywhere: ``new[i] = old[perm[i]]`` along each axis mapped to the group.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

COMPONENTS = ("cnn", "ffn", "attn", "residual", "qkv_independent")
SYMMETRIC_COMPONENTS = ("cnn", "ffn", "attn", "residual")


class SpecError(ValueError):
    """A state dict does not match the permutation spec (the message names the tensor)."""


@dataclass(frozen=True)
class Axis:
    """One permuted axis of a tensor. ``conv_groups`` > 1: the in-channel axis of a grouped conv."""

    group: str
    conv_groups: int = 1


@dataclass(frozen=True)
class Probe:
    """Where activations in a group's basis are observed: a module's output (or input) in the model.

    ``channel_dim`` is 1 for conv activations (B, C, T) and -1 for (B, T, C); ``conv_depth`` is how many
    CNN layers precede the site (it fixes the site's frame rate and its padding mask).
    """

    module: str
    io: str  # "output" or "input"
    channel_dim: int
    conv_depth: int


@dataclass(frozen=True)
class Group:
    """A named permutation group: its size, block structure, tie, component and probe sites."""

    name: str
    size: int
    component: str
    block: int = 1
    tie: Optional[str] = None
    symmetry: bool = True
    probes: Tuple[Probe, ...] = ()


@dataclass(frozen=True)
class PermutationSpec:
    """The symmetry table of one architecture: groups and, per tensor, one entry per axis."""

    groups: Mapping[str, Group]
    axes: Mapping[str, Tuple[Optional[Axis], ...]]
    architecture: str = "hubert"
    _index: Dict[str, List[Tuple[str, int]]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: Dict[str, List[Tuple[str, int]]] = {name: [] for name in self.groups}
        for param, entries in self.axes.items():
            for axis, entry in enumerate(entries):
                if entry is None:
                    continue
                if entry.group not in self.groups:
                    raise SpecError(f"spec: {param} axis {axis} names unknown group {entry.group!r}")
                index[entry.group].append((param, axis))
        self._index.update(index)

    def tensors_of(self, group: str) -> List[Tuple[str, int]]:
        """Every (tensor name, axis) that ``group`` reorders."""
        return list(self._index[group])

    def select(self, components: Iterable[str]) -> List[str]:
        """Names of the groups that belong to ``components``, in declaration order."""
        wanted = set(components)
        unknown = wanted - set(COMPONENTS)
        if unknown:
            raise SpecError(f"unknown component(s) {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
        return [name for name, group in self.groups.items() if group.component in wanted]

    def ties(self, names: Sequence[str]) -> Dict[str, List[str]]:
        """Groups among ``names`` by block family: the tie name, or the group's own name when untied."""
        families: Dict[str, List[str]] = {}
        for name in names:
            group = self.groups[name]
            families.setdefault(group.tie or name, []).append(name)
        return families


def _weight_norm_names(keys: Optional[Sequence[str]], prefix: str) -> Tuple[str, str]:
    """The (magnitude, direction) names of a weight-normed conv: torch parametrizations or legacy g/v."""
    if keys is not None and f"{prefix}.weight_g" in set(keys):
        return f"{prefix}.weight_g", f"{prefix}.weight_v"
    return f"{prefix}.parametrizations.weight.original0", f"{prefix}.parametrizations.weight.original1"


def _conv_site(module: str, depth: int) -> Probe:
    return Probe(module, "output", 1, depth)


def _frame_site(module: str, io: str, depth: int) -> Probe:
    return Probe(module, io, -1, depth)


def hubert_spec(config, keys: Optional[Iterable[str]] = None, attention: str = "heads") -> PermutationSpec:
    """The permutation spec of a transformers ``HubertConfig`` (post-LN or pre-LN, HuBERT or MERT).

    ``keys`` (the state dict's names) selects the weight-norm naming of the positional conv.
    ``attention="heads"`` declares the function-preserving attention groups (heads shared by q/k/v/out,
    one within-head permutation for q/k and one for v/out); ``"independent"`` declares the seed's
    ablation that permutes q, k and v rows independently, which is NOT a symmetry.
    """
    if attention not in ("heads", "independent"):
        raise SpecError(f"attention must be 'heads' or 'independent', got {attention!r}")
    if getattr(config, "adapter_attn_dim", None) is not None:
        raise SpecError("spec: attention adapters (adapter_attn_dim) are not supported")
    conv_dims = list(config.conv_dim)
    depth = len(conv_dims)
    hidden = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    head_dim = hidden // heads
    pos_groups = int(config.num_conv_pos_embedding_groups)
    layers = int(config.num_hidden_layers)
    ffn = int(config.intermediate_size)
    conv_bias = bool(config.conv_bias)
    layer_norm_convs = config.feat_extract_norm == "layer"
    keys = list(keys) if keys is not None else None

    groups: Dict[str, Group] = {}
    axes: Dict[str, Tuple[Optional[Axis], ...]] = {}
    res = Axis("residual")

    # CNN feature encoder: one group per conv's output channels, chained into the next conv's input.
    for i, channels in enumerate(conv_dims):
        name = f"cnn.{i}"
        groups[name] = Group(name, channels, "cnn", probes=(_conv_site(f"feature_extractor.conv_layers.{i}", i + 1),))
        prefix = f"feature_extractor.conv_layers.{i}"
        previous = Axis(f"cnn.{i - 1}") if i > 0 else None
        axes[f"{prefix}.conv.weight"] = (Axis(name), previous, None)
        if conv_bias:
            axes[f"{prefix}.conv.bias"] = (Axis(name),)
        if layer_norm_convs or i == 0:  # GroupNorm (one group per channel) or LayerNorm over channels
            axes[f"{prefix}.layer_norm.weight"] = (Axis(name),)
            axes[f"{prefix}.layer_norm.bias"] = (Axis(name),)
    last_cnn = Axis(f"cnn.{depth - 1}")
    if getattr(config, "feat_proj_layer_norm", True):
        axes["feature_projection.layer_norm.weight"] = (last_cnn,)
        axes["feature_projection.layer_norm.bias"] = (last_cnn,)
    axes["feature_projection.projection.weight"] = (res, last_cnn)
    axes["feature_projection.projection.bias"] = (res,)

    # Residual stream: one permutation for the whole encoder, mapping pos-conv groups onto groups.
    residual_sites = [_frame_site(f"encoder.layers.{i}", "output", depth) for i in range(layers)]
    residual_sites.append(_frame_site("encoder.layer_norm", "output", depth))
    groups["residual"] = Group("residual", hidden, "residual", block=hidden // pos_groups, probes=tuple(residual_sites))
    if getattr(config, "mask_time_prob", 0) > 0 or getattr(config, "mask_feature_prob", 0) > 0:
        axes["masked_spec_embed"] = (res,)
    pos = "encoder.pos_conv_embed"
    if getattr(config, "conv_pos_batch_norm", False):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            axes[f"{pos}.batch_norm.{leaf}"] = (res,)
        axes[f"{pos}.batch_norm.num_batches_tracked"] = ()
    if getattr(config, "conv_pos_batch_norm", False):
        magnitude, direction = "", f"{pos}.conv.weight"  # no weight norm in this variant
    else:
        magnitude, direction = _weight_norm_names(keys, f"{pos}.conv")
    if magnitude:
        axes[magnitude] = (None, None, None)  # weight_norm(dim=2): one norm per tap, over all channels
    axes[direction] = (res, Axis("residual", conv_groups=pos_groups), None)
    axes[f"{pos}.conv.bias"] = (res,)
    axes["encoder.layer_norm.weight"] = (res,)
    axes["encoder.layer_norm.bias"] = (res,)

    for i in range(layers):
        layer = f"encoder.layers.{i}"
        attn = f"{layer}.attention"
        if attention == "heads":
            qk, vo = f"attn.{i}.qk", f"attn.{i}.vo"
            tie = f"attn.{i}.heads"
            groups[qk] = Group(qk, hidden, "attn", block=head_dim, tie=tie, probes=(
                _frame_site(f"{attn}.q_proj", "output", depth), _frame_site(f"{attn}.k_proj", "output", depth)))
            groups[vo] = Group(vo, hidden, "attn", block=head_dim, tie=tie, probes=(
                _frame_site(f"{attn}.out_proj", "input", depth),))
            rows = {"q_proj": qk, "k_proj": qk, "v_proj": vo}
        else:
            rows = {}
            for proj, short in (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v")):
                name = f"attn.{i}.{short}"
                site = _frame_site(f"{attn}.{proj}", "output", depth)
                groups[name] = Group(name, hidden, "qkv_independent", symmetry=False, probes=(site,))
                rows[proj] = name
        for proj, group in rows.items():
            axes[f"{attn}.{proj}.weight"] = (Axis(group), res)
            axes[f"{attn}.{proj}.bias"] = (Axis(group),)
        axes[f"{attn}.out_proj.weight"] = (res, Axis(rows["v_proj"]))
        axes[f"{attn}.out_proj.bias"] = (res,)
        unit = f"ffn.{i}"
        groups[unit] = Group(unit, ffn, "ffn", probes=(_frame_site(f"{layer}.feed_forward.output_dense", "input", depth),))
        axes[f"{layer}.feed_forward.intermediate_dense.weight"] = (Axis(unit), res)
        axes[f"{layer}.feed_forward.intermediate_dense.bias"] = (Axis(unit),)
        axes[f"{layer}.feed_forward.output_dense.weight"] = (res, Axis(unit))
        axes[f"{layer}.feed_forward.output_dense.bias"] = (res,)
        for norm in ("layer_norm", "final_layer_norm"):
            axes[f"{layer}.{norm}.weight"] = (res,)
            axes[f"{layer}.{norm}.bias"] = (res,)
    return PermutationSpec(groups=groups, axes=axes, architecture="hubert")


def check_coverage(spec: PermutationSpec, shapes: Mapping[str, Sequence[int]]) -> None:
    """Fail unless the spec accounts for exactly the tensors in ``shapes`` (name -> shape), axis by axis."""
    for name, shape in shapes.items():
        if name not in spec.axes:
            raise SpecError(f"spec coverage: tensor {name!r} {tuple(shape)} is not declared in the permutation spec; "
                            "declare its axes (None for axes that never move)")
        entries = spec.axes[name]
        if len(entries) != len(shape):
            raise SpecError(f"spec coverage: {name!r} has {len(shape)} axes but the spec declares {len(entries)}")
        for axis, entry in enumerate(entries):
            if entry is None:
                continue
            size = spec.groups[entry.group].size
            expected = size // entry.conv_groups
            if shape[axis] != expected:
                raise SpecError(f"spec coverage: {name!r} axis {axis} has {shape[axis]} entries, "
                                f"group {entry.group!r} expects {expected}")
    extra = [name for name in spec.axes if name not in shapes]
    if extra:
        raise SpecError(f"spec coverage: the spec declares {extra[0]!r} but the model has no such tensor "
                        f"({len(extra)} declared tensors absent)")


def spec_for_model(model, attention: str = "heads") -> PermutationSpec:
    """The spec of a ``HubertModel`` instance, checked against its state dict."""
    state = model.state_dict()
    spec = hubert_spec(model.config, keys=state.keys(), attention=attention)
    check_coverage(spec, {k: tuple(v.shape) for k, v in state.items()})
    return spec
