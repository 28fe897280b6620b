"""Embedded tiny models: ``tiny:<arch>[:<seed>]`` sources (and ``*_tiny`` entries) written once into the cache."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable, Dict

import torch

from upstream_merged.cache import build_atomically, cache_root, content_key
from upstream_merged.core.rng import isolated_rng

# Each module registers writers for its architectures with @tiny_writer.
WRITER_MODULES = (
    "upstream_merged.tiny.hubert",
    "upstream_merged.tiny.text_image",
    "upstream_merged.tiny.beats",
    "upstream_merged.tiny.fusion",
    "upstream_merged.tiny.task_models",
)
TINY_FORMAT_VERSION = 1
_WRITERS: Dict[str, Callable[[Path, int], None]] = {}


def tiny_writer(arch: str) -> Callable:
    """Register ``fn(directory, seed)`` as the writer of the tiny architecture ``arch``."""

    def decorate(fn: Callable[[Path, int], None]) -> Callable[[Path, int], None]:
        _WRITERS[arch] = fn
        return fn

    return decorate


def tiny_architectures() -> list[str]:
    """Names accepted after ``tiny:``."""
    for module in WRITER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
    return sorted(_WRITERS)


def parse_tiny(source: str) -> tuple[str, int]:
    """Split ``tiny:<arch>[:<seed>]`` into (arch, seed)."""
    parts = source.split(":")
    if len(parts) not in (2, 3) or parts[0] != "tiny" or not parts[1]:
        raise ValueError(f"bad tiny source {source!r}; expected tiny:<arch>[:<seed>]")
    arch = parts[1]
    try:
        seed = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise ValueError(f"bad seed in tiny source {source!r}") from None
    if arch not in tiny_architectures():
        raise ValueError(f"unknown tiny architecture {arch!r} in {source!r}; known: {', '.join(tiny_architectures())}")
    return arch, seed


def materialize_tiny(source: str) -> Path:
    """Write (once) and return the directory of the embedded tiny model ``source``."""
    arch, seed = parse_tiny(source)
    key = content_key({"arch": arch, "seed": seed, "version": TINY_FORMAT_VERSION, "torch": torch.__version__})
    target = cache_root() / "tiny" / f"{arch}-seed{seed}-{key}"
    return build_atomically(target, lambda tmp: _write_isolated(arch, tmp, seed))


def _write_isolated(arch: str, directory: Path, seed: int) -> None:
    with isolated_rng(seed):  # a writer never moves the caller's (s3prl's seeded) global RNG state
        _WRITERS[arch](directory, seed)


@torch.no_grad()
def randomize_(module: torch.nn.Module, seed: int, scale: float = 0.05) -> torch.nn.Module:
    """Give every floating tensor a seeded random value (norm scales near 1), so no axis hides."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32).to(tensor.dtype)
        leaf = name.rsplit(".", 1)[-1]
        is_scale = ("norm" in name.lower() and leaf == "weight") or leaf in ("weight_g", "original0")
        if is_scale:
            tensor.data.copy_(1.0 + 0.1 * noise)
        elif tensor.dim() >= 2:
            fan_in = tensor[0].numel()
            tensor.data.copy_(noise / fan_in ** 0.5)
        else:
            tensor.data.copy_(scale * noise)
    return module
