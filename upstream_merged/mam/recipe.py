"""The MAM recipe (``method: mam``): validated schema, registered with the shared recipe format.

Example::

    method: mam
    sources: {target: facebook/hubert-base-ls960, source: bert-base-uncased}
    lambda: 0.05            # float, or one value per merged layer
    layers: [0, 1, 2]       # optional subset of target layers (default: all)
    include_out_proj: false # also merge the attention output projection
    layer_map: {0: 0}       # only for unequal depths: target layer -> source layer
    learnable: false        # true = L-MAM (lambda_init instead of lambda)
    lambda_lr_scale: 1.0    # L-MAM: λ's learning rate = this x the upstream's (Adam-family optimizers)
    allow_pickle: false     # true = a BEATs target .pt may be fully unpickled (only for files you trust)
"""
from __future__ import annotations

from typing import Dict, List, Literal, Optional, Union

from pydantic import ConfigDict, Field, model_validator

from upstream_merged.recipe import RecipeBase, register_method

ROLES = ("target", "source")


class MAMRecipe(RecipeBase):
    """Multimodal attention merging of a ``source`` (text/image) model into a ``target`` (audio) model."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    method: Literal["mam"]
    lambda_: Optional[Union[float, List[float]]] = Field(default=None, alias="lambda")
    layers: Optional[List[int]] = None
    include_out_proj: bool = False
    layer_map: Optional[Dict[int, int]] = None
    learnable: bool = False
    lambda_init: Optional[Union[float, List[float]]] = None
    trainable: Literal["all", "lambdas"] = "all"  # L-MAM under -f: everything, or only the λ logits
    lambda_lr_scale: float = Field(default=1.0, gt=0)  # L-MAM: λ's lr multiplier over the upstream's
    allow_pickle: bool = False  # BEATs target .pt that needs full unpickling: load it anyway (files you trust)

    @model_validator(mode="after")
    def _consistent(self) -> "MAMRecipe":
        if set(self.sources) != set(ROLES):
            raise ValueError(f"sources must name exactly 'target' and 'source', got {sorted(self.sources)}")
        if self.learnable:
            if self.lambda_ is not None:
                raise ValueError("learnable recipes take `lambda_init` (the start value of the learned λ), not `lambda`")
            if self.lambda_init is None:
                raise ValueError("learnable recipes need `lambda_init` (float or one value per merged layer)")
        else:
            if self.lambda_ is None:
                raise ValueError("`lambda` is required (float, or one value per merged layer)")
            if self.lambda_init is not None:
                raise ValueError("`lambda_init` only applies with `learnable: true`")
            if self.trainable != "all":
                raise ValueError("`trainable` only applies with `learnable: true`")
            if self.lambda_lr_scale != 1.0:
                raise ValueError("`lambda_lr_scale` only applies with `learnable: true` (a fixed λ is not trained)")
        return self

    @property
    def lambda_spec(self) -> Union[float, List[float]]:
        """λ for a fixed merge, or the initial λ of a learnable one."""
        return self.lambda_init if self.learnable else self.lambda_


def _build(recipe: MAMRecipe, out_dir, recipe_text: Optional[str] = None, progress: bool = True):
    from upstream_merged.mam.build import build_merged_dir

    return build_merged_dir(recipe, out_dir, recipe_text=recipe_text, progress=progress)


def _plan(recipe: MAMRecipe) -> str:
    from upstream_merged.mam.build import plan_text

    return plan_text(recipe)


register_method("mam", MAMRecipe, _build, _plan)
