"""The fusion upstream: frozen backbones -> aligned layers -> a trainable interface, s3prl contract."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Mapping, Optional

import torch
from torch import nn

from upstream_merged.core.frames import target_frames
from upstream_merged.core.rng import isolated_rng
from upstream_merged.fusion.align import LayerAligner
from upstream_merged.fusion.interfaces import GumbelDimensionSelect, HConv
from upstream_merged.fusion.spec import FusionSpec
from upstream_merged.upstream.base import validate_wavs
from upstream_merged.upstream.frozen_state import FINGERPRINT_KEY, keep_frozen_out_of_state_dict

if TYPE_CHECKING:
    from upstream_merged.fusion.backbones import FrozenBackbone

BACKBONE_PREFIX = "backbones."


def _backbone_role(key: str) -> Optional[str]:
    return key.split(".")[1] if key.startswith(BACKBONE_PREFIX) else None


def is_frozen_key(key: str) -> bool:
    """True for a fusion state-dict key that is not interface: a backbone tensor or the backbones' fingerprint."""
    return key.startswith(BACKBONE_PREFIX) or key == FINGERPRINT_KEY


class FusionUpstream(nn.Module):
    """s3prl upstream fusing several frozen backbones through a trainable interface.

    hconv/chconv/gumd return one fused feature per frame as a one-element ``hidden_states`` (the
    Featurizer then has no weights to learn; the interface trains under ``-f``); ws returns the
    aligned layers, which the stock Featurizer weights.
    """

    def __init__(self, backbones: Mapping[str, "FrozenBackbone"], spec: FusionSpec, seed: int = 0):
        super().__init__()
        if not backbones:
            raise ValueError("a fusion upstream needs at least one backbone")
        self.spec = spec
        self.backbones = nn.ModuleDict(dict(backbones))
        merge = spec.resolved_merge
        # evaluate rebuilds the entry: the same recipe must give the same init, without moving s3prl's global RNG
        with isolated_rng(seed):
            self.aligner = LayerAligner(
                {r: b.width for r, b in backbones.items()}, {r: b.depth for r, b in backbones.items()},
                merge, width=spec.width, layers=spec.layers,
            )
            self.interface = self._build_interface(spec)
        # -f checkpoints hold the aligner + interface and a fingerprint of the backbones, never the backbones
        keep_frozen_out_of_state_dict(self, _backbone_role, kind="backbone",
                                      owner=f"fusion upstream ({spec.interface})")

    def _build_interface(self, spec: FusionSpec) -> Optional[nn.Module]:
        layers, width = self.aligner.out_layers, self.aligner.width
        if spec.interface in ("hconv", "chconv"):
            return HConv(layers, width, layer_norm=spec.layer_norm)
        if spec.interface == "gumd":
            return GumbelDimensionSelect(layers, width, spec.output_dim or width, spec.gumbel_tau, spec.gumbel_hard)
        return None  # ws: the stock Featurizer is the interface

    @property
    def output_dim(self) -> int:
        """Width of each returned hidden state."""
        return self.interface.output_dim if self.interface is not None else self.aligner.width

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Samples of 16 kHz input per output frame (the common frame rate)."""
        return self.spec.frame_rate

    def interface_state_dict(self) -> Dict[str, torch.Tensor]:
        """The trainable part's tensors (aligner projections and interface), without backbones or fingerprint."""
        return {k: v for k, v in self.state_dict().items() if not is_frozen_key(k)}

    def aligned_layers(self, wavs: List[torch.Tensor]) -> torch.Tensor:
        """(B, L', T, D) aligned (and merged) layers of every backbone for a wav list."""
        wavs = validate_wavs(wavs)
        frames = target_frames(max(len(w) for w in wavs), self.spec.frame_rate)
        hidden = {role: backbone(wavs) for role, backbone in self.backbones.items()}
        return self.aligner(hidden, frames)

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        stack = self.aligned_layers(wavs)  # (B, L', T, D)
        if self.interface is None:
            layers = list(stack.unbind(dim=1))
            return {"hidden_states": layers, "last_hidden_state": layers[-1]}
        fused = self.interface(stack)  # (B, T, output_dim)
        return {"hidden_states": [fused], "last_hidden_state": fused}
