"""Where each architecture keeps its attention projections and its width/head/layer counts (pure data)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

ROLES = ("q", "k", "v", "out")
QKV = ("q", "k", "v")


@dataclass(frozen=True)
class AttentionLayout:
    """Module-name templates (``{i}`` = layer index) of the q/k/v/out projections, plus config key names."""

    arch: str
    modules: Mapping[str, str]  # role -> module name template, e.g. "encoder.layer.{i}.attention.self.query"
    width_key: str
    heads_key: str
    layers_key: str

    def module(self, role: str, layer: int) -> str:
        """The module name of projection ``role`` in ``layer``."""
        return self.modules[role].format(i=layer)

    def tensor_names(self, role: str, layer: int) -> Tuple[str, str]:
        """(weight, bias) state-dict names of projection ``role`` in ``layer``."""
        base = self.module(role, layer)
        return f"{base}.weight", f"{base}.bias"


def _layout(arch: str, prefix: str, names: Dict[str, str], width: str, heads: str, layers: str) -> AttentionLayout:
    return AttentionLayout(arch, {role: prefix + name for role, name in names.items()}, width, heads, layers)


_HF_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers")
_BEATS_KEYS = ("encoder_embed_dim", "encoder_attention_heads", "encoder_layers")

LAYOUTS: Dict[str, AttentionLayout] = {
    # transformers BertModel (post-LN): BertSelfAttention.{query,key,value}, BertSelfOutput.dense
    "bert": _layout("bert", "encoder.layer.{i}.attention.",
                    {"q": "self.query", "k": "self.key", "v": "self.value", "out": "output.dense"}, *_HF_KEYS),
    # transformers ViTModel (pre-LN): ViTSelfAttention.{query,key,value}, ViTSelfOutput.dense
    "vit": _layout("vit", "encoder.layer.{i}.attention.",
                   {"q": "attention.query", "k": "attention.key", "v": "attention.value", "out": "output.dense"},
                   *_HF_KEYS),
    # transformers HubertModel (post-LN and stable-layer-norm variants share the names)
    "hubert": _layout("hubert", "encoder.layers.{i}.attention.",
                      {"q": "q_proj", "k": "k_proj", "v": "v_proj", "out": "out_proj"}, *_HF_KEYS),
    # official BEATs checkpoints (fairseq-style MultiheadAttention)
    "beats": _layout("beats", "encoder.layers.{i}.self_attn.",
                     {"q": "q_proj", "k": "k_proj", "v": "v_proj", "out": "out_proj"}, *_BEATS_KEYS),
}

TARGET_ARCHS = ("hubert", "beats")
SOURCE_ARCHS = ("bert", "vit", "hubert", "beats")


def layout(arch: str) -> AttentionLayout:
    """The layout of ``arch``; the error lists the known ones."""
    try:
        return LAYOUTS[arch]
    except KeyError:
        raise ValueError(f"no attention layout for architecture {arch!r}; known: {', '.join(sorted(LAYOUTS))}") from None
