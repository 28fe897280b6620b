"""Plain-data description of a fusion upstream's architecture (cheap to import: no model code)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Literal, Optional

Interface = Literal["hconv", "chconv", "ws", "gumd"]
Merge = Literal["add", "concat", "stack"]
DEFAULT_MERGE: Dict[str, Merge] = {"hconv": "add", "chconv": "concat", "ws": "add", "gumd": "stack"}
NEEDS_FINETUNE_FLAG: Dict[str, bool] = {"hconv": True, "chconv": True, "gumd": True, "ws": False}


@dataclass(frozen=True)
class FusionSpec:
    """Everything but the backbones that decides the fusion upstream's architecture."""

    interface: Interface
    merge: Optional[Merge] = None  # None: the interface's default (DEFAULT_MERGE)
    frame_rate: int = 320
    width: Optional[int] = None
    layers: Optional[int] = None
    layer_norm: bool = False
    gumbel_tau: float = 1.0
    gumbel_hard: bool = True
    output_dim: Optional[int] = None

    @property
    def resolved_merge(self) -> Merge:
        """The merge actually used."""
        return self.merge or DEFAULT_MERGE[self.interface]
