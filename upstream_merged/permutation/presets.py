"""Presets mirroring the seed paper's Table I (settings 3-9), plus a residual-stream variant the paper lacks.

Scores are the paper's (SUPERB + MARBLE + ESC-50 aggregate; HuBERT = 942.82, MERT = 832.77), kept as
data so reports and model cards can cite what each setting reproduces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

DEFAULT_PRESET = "cnn_ffn_attn"


@dataclass(frozen=True)
class Preset:
    """One merge setting: which components are aligned and the weight of model A."""

    name: str
    components: Tuple[str, ...]
    alpha: float
    paper_id: Optional[int]
    paper_average: Optional[float]
    description: str

    @property
    def symmetry(self) -> bool:
        """True when every aligned component is function-preserving for model B."""
        return "qkv_independent" not in self.components


PRESETS: Dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("avg", (), 0.5, 3, 476.55, "plain 0.5/0.5 average, no alignment"),
        Preset("linear", (), 0.9, 4, 938.11, "0.9 A + 0.1 B, no alignment"),
        Preset("cnn_ffn_attn", ("cnn", "ffn", "attn"), 0.9, 5, 957.65,
               "CNN channels + FFN units + attention heads/channels aligned (the paper's best, default)"),
        Preset("cnn", ("cnn",), 0.9, 6, 923.95, "CNN channels aligned"),
        Preset("cnn_ffn", ("cnn", "ffn"), 0.9, 7, 937.24, "CNN channels + FFN units aligned"),
        Preset("cnn_all", ("cnn", "ffn", "qkv_independent"), 0.9, 8, 928.49,
               "CNN + FFN + q, k, v permuted independently: the paper's 'all' ablation, NOT a symmetry"),
        Preset("ffn_attn", ("ffn", "attn"), 0.9, 9, 944.26, "FFN units + attention aligned, CNN left as is"),
        Preset("cnn_ffn_attn_residual", ("cnn", "ffn", "attn", "residual"), 0.9, None, None,
               "as cnn_ffn_attn plus the residual stream (block-structured by the positional conv's groups)"),
    )
}
PAPER_REFERENCE = {"hubert": 942.82, "mert": 832.77, "best_speech": 997.72, "best_music": 917.58}
PAPER_URL = "https://github.com/FabianRitter/speech-ssl-merging"
