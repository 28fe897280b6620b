"""Presets mirroring the seed paper's Table I (settings 3-9), plus a residual-stream variant the paper lacks.

Scores are the paper's (SUPERB + MARBLE + ESC-50 aggregate; HuBERT = 942.82, MERT = 832.77), kept as
data so reports and model cards can cite the paper's figure for the setting a build reproduces. They
are the paper's reference numbers, never a measurement of a model built here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

DEFAULT_PRESET = "cnn_ffn_attn"
ENTRY_PREFIX = "merged_hubert_mert"
CUSTOM = "custom"  # what reports and entries call a build whose components or alpha match no preset
CUSTOM_ENTRY = f"{ENTRY_PREFIX}_custom"
ALPHA_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Preset:
    """One merge setting: which components are aligned and the weight of model A."""

    name: str
    components: Tuple[str, ...]
    alpha: float
    paper_id: Optional[int]
    paper_average: Optional[float]
    description: str
    entry_suffix: str

    @property
    def symmetry(self) -> bool:
        """True when every aligned component is function-preserving for model B."""
        return "qkv_independent" not in self.components

    @property
    def entry(self) -> str:
        """The hub entry that builds (and loads) this preset."""
        return f"{ENTRY_PREFIX}{self.entry_suffix}"

    def matches(self, components: Iterable[str], alpha: float) -> bool:
        """True when aligning ``components`` with weight ``alpha`` is exactly this setting."""
        return set(components) == set(self.components) and abs(float(alpha) - self.alpha) <= ALPHA_TOLERANCE


PRESETS: Dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("avg", (), 0.5, 3, 476.55, "plain 0.5/0.5 average, no alignment", "_avg"),
        Preset("linear", (), 0.9, 4, 938.11, "0.9 A + 0.1 B, no alignment", "_linear"),
        Preset("cnn_ffn_attn", ("cnn", "ffn", "attn"), 0.9, 5, 957.65,
               "CNN channels + FFN units + attention heads/channels aligned (the paper's best setting)", ""),
        Preset("cnn", ("cnn",), 0.9, 6, 923.95, "CNN channels aligned", "_cnn"),
        Preset("cnn_ffn", ("cnn", "ffn"), 0.9, 7, 937.24, "CNN channels + FFN units aligned", "_cnn_ffn"),
        Preset("cnn_all", ("cnn", "ffn", "qkv_independent"), 0.9, 8, 928.49,
               "CNN + FFN + q, k, v permuted independently: the paper's 'all' ablation, NOT a symmetry", "_cnn_all"),
        Preset("ffn_attn", ("ffn", "attn"), 0.9, 9, 944.26, "FFN units + attention aligned, CNN left as is", "_ffn_attn"),
        Preset("cnn_ffn_attn_residual", ("cnn", "ffn", "attn", "residual"), 0.9, None, None,
               "as cnn_ffn_attn plus the residual stream (block-structured by the positional conv's groups)", "_residual"),
    )
}
PAPER_REFERENCE = {"hubert": 942.82, "mert": 832.77, "best_speech": 997.72, "best_music": 917.58}
PAPER_URL = "https://github.com/FabianRitter/speech-ssl-merging"
PAPER_SCORE_NOTE = ("the paper's reported average (SUPERB + MARBLE + ESC-50) for its own merge of HuBERT Base and "
                    "MERT-v0-public in this setting; a reference figure, not a measurement of this model")


def match_preset(components: Iterable[str], alpha: float) -> Optional[Preset]:
    """The preset whose aligned components and alpha equal these, or None (a custom setting)."""
    components = tuple(components)
    for preset in PRESETS.values():
        if preset.matches(components, alpha):
            return preset
    return None


def entry_for(components: Iterable[str], alpha: float) -> str:
    """The hub entry to load a merge of this setting with: its preset's entry, else the custom entry."""
    preset = match_preset(components, alpha)
    return preset.entry if preset else CUSTOM_ENTRY
