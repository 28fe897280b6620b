"""L-MAM: λ per merged layer as a trainable parameter, the merged weight as a torch parametrization.

``W = (1-λ)·W_target + λ·W_source`` is computed on every access to ``proj.weight`` / ``proj.bias``
through ``torch.nn.utils.parametrize``, so any optimiser over the upstream's parameters (stock
``run_downstream.py -f``) trains λ together with the target weights.

Constraint: λ = sigmoid(logit). It keeps λ strictly inside (0, 1) with a gradient everywhere; a clamp
would give zero gradient once λ hits a bound, freezing it there for good. The cost is that λ can
approach but never equal 0 or 1, so ``lambda_init`` must lie strictly inside (0, 1).
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from upstream_merged.mam.core import MAMError, MergePlan, check_pairs, tensor_pairs
from upstream_merged.mam.layouts import AttentionLayout

LAMBDA_MODULE = "mam_lambda"  # attribute name; checkpoints hold <...>.mam_lambda.logits and .layers


class LambdaBank(nn.Module):
    """One trainable λ per merged target layer, stored as a logit (λ = sigmoid(logit))."""

    def __init__(self, layers: Sequence[int], init: Sequence[float], lr_scale: float = 1.0):
        super().__init__()
        if not lr_scale > 0:
            raise MAMError(f"lambda_lr_scale {lr_scale} must be > 0")
        if len(layers) != len(init):
            raise MAMError(f"lambda_init has {len(init)} values for {len(layers)} merged layers")
        for layer, value in zip(layers, init):
            if not 0.0 < value < 1.0:
                raise MAMError(f"lambda_init {value} (layer {layer}) must lie strictly inside (0, 1): "
                               f"learnable λ is sigmoid(logit) and cannot start at a bound")
        logits = torch.tensor([math.log(v / (1.0 - v)) for v in init], dtype=torch.float32)
        # λ's own learning rate (recipe `lambda_lr_scale`): the stored parameter is logit / scale and λ =
        # sigmoid(scale · parameter). s3prl's runner puts every upstream parameter in ONE optimizer group with
        # one lr, so the scale lives in the parametrization: under Adam/AdamW (scale-invariant steps) the logit
        # moves scale x as far per step as at scale 1, i.e. lr_λ = scale · lr; under plain SGD it is scale² · lr.
        self.lr_scale = float(lr_scale)
        self.logits = nn.Parameter(logits / self.lr_scale)  # (L_merged,)
        if self.lr_scale != 1.0:  # stored so checkpoints read back the right λ (absent at the default)
            self.register_buffer("logit_scale", torch.tensor(self.lr_scale, dtype=torch.float32))
        self.register_buffer("layers", torch.tensor(list(layers), dtype=torch.long))  # target layer of each λ

    def values(self) -> torch.Tensor:
        """λ per merged layer, in (0, 1)."""
        return torch.sigmoid(self.logits * self.lr_scale)

    def as_dict(self) -> Dict[int, float]:
        """{target layer: λ} as plain floats."""
        return {int(layer): float(value) for layer, value in zip(self.layers, self.values().detach())}


class MergedTensor(nn.Module):
    """Parametrization ``original -> (1-λ)·original + λ·source`` with λ read from a shared bank."""

    def __init__(self, source: torch.Tensor, bank: LambdaBank, index: int):
        super().__init__()
        self.register_buffer("source", source.detach().clone())  # frozen source projection
        self._bank = (bank,)  # a tuple keeps the shared bank out of this module's parameters
        self.index = int(index)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        lam = self._bank[0].values()[self.index]
        return (1.0 - lam) * original + lam * self.source.to(original.dtype)


def attach_learnable(model: nn.Module, source_state: Mapping[str, torch.Tensor], plan: MergePlan,
                     target_layout: AttentionLayout, source_layout: AttentionLayout, lr_scale: float = 1.0) -> LambdaBank:
    """Parametrize the planned projections of ``model`` in place; return the λ bank (λ init = plan's λ)."""
    target_state = dict(model.state_dict())
    pairs = tensor_pairs(plan, target_layout, source_layout)
    check_pairs(pairs, target_state, source_state)
    bank = LambdaBank([m.target for m in plan.layers], [m.lam for m in plan.layers], lr_scale)
    index_of = {m.target: i for i, m in enumerate(plan.layers)}
    for item in plan.layers:
        for role in plan.roles:
            module = model.get_submodule(target_layout.module(role, item.target))
            for tensor_name, (t_name, s_name) in zip(("weight", "bias"), zip(
                    target_layout.tensor_names(role, item.target), source_layout.tensor_names(role, item.source))):
                parametrize.register_parametrization(
                    module, tensor_name, MergedTensor(source_state[s_name], bank, index_of[item.target]))
    return bank


def freeze_all_but_lambdas(module: nn.Module) -> None:
    """Only λ logits keep requires_grad (the ``trainable: lambdas`` recipe option)."""
    for name, parameter in module.named_parameters():
        parameter.requires_grad_(name.endswith(f"{LAMBDA_MODULE}.logits"))


def find_lambda_states(state: Mapping[str, torch.Tensor]) -> Dict[str, Dict[int, float]]:
    """From any state dict holding L-MAM banks: {bank prefix: {target layer: λ}}."""
    banks = {}
    for key, logits in state.items():
        if not key.endswith(f"{LAMBDA_MODULE}.logits"):
            continue
        prefix = key[: -len(".logits")]
        layers = state.get(f"{prefix}.layers")
        layer_ids = [int(x) for x in layers] if layers is not None else list(range(len(logits)))
        scale = state.get(f"{prefix}.logit_scale")
        logits = logits.float() * (float(scale) if scale is not None else 1.0)
        banks[prefix] = {layer: float(v) for layer, v in zip(layer_ids, torch.sigmoid(logits))}
    return banks
