"""Element-wise interpolation of state dicts, the last step of every merge method."""
from __future__ import annotations

from typing import Callable, Dict, Iterable, Optional, Union

import torch

Weight = Union[float, Callable[[str], Optional[float]]]


def interpolate_state_dicts(
    a: Dict[str, torch.Tensor],
    b: Dict[str, torch.Tensor],
    weight_a: Weight,
    keys: Optional[Iterable[str]] = None,
) -> Dict[str, torch.Tensor]:
    """Return ``w·a + (1-w)·b`` per tensor; ``weight_a`` is a float or ``fn(name) -> w or None`` (None keeps a).

    Only ``keys`` (default: all of a's) are interpolated; every other tensor is copied from ``a``.
    Shapes must match; the error names the first tensor that does not.
    """
    selected = set(a) if keys is None else set(keys)
    missing = sorted(k for k in selected if k not in b)
    if missing:
        raise KeyError(f"tensor {missing[0]!r} is missing from the second model ({len(missing)} missing)")
    merged = {}
    for name, tensor in a.items():
        w = None
        if name in selected:
            w = weight_a(name) if callable(weight_a) else float(weight_a)
        if w is None or not tensor.is_floating_point():
            merged[name] = tensor.clone()
            continue
        other = b[name]
        if other.shape != tensor.shape:
            raise ValueError(f"shape mismatch for {name!r}: {tuple(tensor.shape)} vs {tuple(other.shape)}")
        merged[name] = (w * tensor.double() + (1.0 - w) * other.double()).to(tensor.dtype)
    return merged
