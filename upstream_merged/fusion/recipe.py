"""The fusion recipe: which upstreams to fuse (sources), the interface and its options.

```yaml
method: fusion
sources: {hubert: facebook/hubert-base-ls960, wavlm: microsoft/wavlm-base-plus}
interface: hconv            # hconv | chconv | ws | gumd
seed: 0                     # seeds the interface's initial weights
options: {frame_rate: 320, layer_norm: false, whisper_context: clip}
```

``python -m upstream_merged merge`` writes a self-contained fused-model directory (backbones,
initial interface weights, recipe); see upstream_merged/fusion/fused_dir.py.
"""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from upstream_merged.fusion.spec import DEFAULT_MERGE, FusionSpec
from upstream_merged.recipe import RecipeBase, StrictModel, register_method

_ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FusionOptions(StrictModel):
    """Alignment and interface settings (all optional)."""

    frame_rate: PositiveInt = 320  # samples per output frame at 16 kHz (the downsample rate s3prl sees)
    width: Optional[PositiveInt] = None  # common width; default: the widest backbone
    layers: Optional[PositiveInt] = None  # common layer count for add/concat; default: the deepest backbone
    merge: Optional[Literal["add", "concat", "stack"]] = None  # default: hconv add, chconv concat, ws add, gumd stack
    layer_norm: bool = False  # HConv: parameter-free layer norm of every layer first
    gumbel_tau: PositiveFloat = 1.0  # GumD temperature
    gumbel_hard: bool = True  # GumD: straight-through one-hot samples in training (eval always takes the argmax)
    output_dim: Optional[PositiveInt] = None  # GumD projection width; default: the common width
    whisper_context: Literal["clip", "padded"] = "clip"  # padded = WhisperFeatureExtractor's 30 s windows


class FusionRecipe(RecipeBase):
    """A fusion recipe (method: fusion)."""

    method: Literal["fusion"]
    interface: Literal["hconv", "chconv", "ws", "gumd"]
    options: FusionOptions = Field(default_factory=FusionOptions)

    @field_validator("sources")
    @classmethod
    def _roles(cls, sources: dict) -> dict:
        if not sources:
            raise ValueError("name at least one upstream (role: HF id, local dir or tiny:<arch>)")
        for role in sources:
            if not _ROLE.match(role):
                raise ValueError(f"role {role!r} must be an identifier (letters, digits, _), e.g. hubert")
        return sources

    @model_validator(mode="after")
    def _merge_fits_interface(self) -> "FusionRecipe":
        merge = self.options.merge
        if self.interface == "chconv" and merge not in (None, "concat"):
            raise ValueError(f"options.merge={merge!r}: chconv is HConv over concatenated upstreams (merge: concat)")
        if self.interface == "hconv" and merge == "concat":
            raise ValueError("options.merge='concat' with interface hconv is CHConv: write interface: chconv")
        if self.options.layers is not None and (merge or DEFAULT_MERGE[self.interface]) == "stack":
            raise ValueError("options.layers has no effect with merge: stack (every layer of every upstream is kept)")
        if self.options.output_dim is not None and self.interface != "gumd":
            raise ValueError(f"options.output_dim only applies to interface gumd, not {self.interface}")
        return self

    def effective(self) -> "FusionRecipe":
        """The recipe with the interface's default merge written out."""
        merge = self.options.merge or DEFAULT_MERGE[self.interface]
        return self.model_copy(update={"options": self.options.model_copy(update={"merge": merge})})

    def spec(self) -> FusionSpec:
        """The architecture settings as plain data."""
        o = self.options
        return FusionSpec(
            interface=self.interface, merge=o.merge or DEFAULT_MERGE[self.interface], frame_rate=o.frame_rate,
            width=o.width, layers=o.layers, layer_norm=o.layer_norm, gumbel_tau=o.gumbel_tau,
            gumbel_hard=o.gumbel_hard, output_dim=o.output_dim,
        )


def _build(recipe: FusionRecipe, out_dir, recipe_text: Optional[str] = None, progress: bool = True) -> None:
    from upstream_merged.fusion.fused_dir import write_fused_dir

    write_fused_dir(recipe, out_dir, recipe_text=recipe_text)


def plan(recipe: FusionRecipe) -> str:
    """What ``merge`` would write for ``recipe`` (nothing is loaded or downloaded)."""
    spec = recipe.spec()
    lines = [f"fusion recipe: interface {spec.interface}, merge {spec.resolved_merge}, "
             f"frame rate {spec.frame_rate} samples, seed {recipe.seed}"]
    lines += [f"  backbone {role}: {source} (frozen)" for role, source in recipe.sources.items()]
    lines.append("would write: backbones/<role>/ (copies of the sources), interface.safetensors "
                 "(seeded initial interface weights), recipe.yaml, fusion.json, README.md")
    return "\n".join(lines)


register_method("fusion", FusionRecipe, _build, plan)
