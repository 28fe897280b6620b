"""The plugin's hub entries and downstream tasks, and how they are attached to stock s3prl."""
from __future__ import annotations

import importlib
import logging
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, Mapping, Optional

from upstream_merged.core.rng import without_global_rng_effects

logger = logging.getLogger(__name__)

# Modules whose import declares hub entries through @hub_entry (one per method family).
ENTRY_MODULES = (
    "upstream_merged.hub.baselines",
    "upstream_merged.hub.permutation",
    "upstream_merged.hub.beats",
    "upstream_merged.hub.mam",
    "upstream_merged.hub.fusion",
    "upstream_merged.hub.small",
    "upstream_merged.hub.controls",
)
DOWNSTREAM_DIR = Path(__file__).resolve().parent / "downstream"

_ENTRIES: Dict[str, Callable] = {}
_ENTRY_MARK = "_upstream_merged_entry"


class RegistrationError(RuntimeError):
    """A plugin name would shadow a stock s3prl name."""


def hub_entry(name: str) -> Callable[[Callable], Callable]:
    """Declare a function as the hub entry ``name`` (s3prl signature: ckpt, model_config, refresh)."""

    def decorate(fn: Callable) -> Callable:
        known = _ENTRIES.get(name)
        if known is not None and getattr(known, "__wrapped__", known) is fn:
            return known
        if known is not None:
            raise RegistrationError(f"hub entry {name!r} is declared twice ({known.__module__}, {fn.__module__})")
        fn.__name__ = name
        # s3prl seeds the global RNGs before building the upstream: building it must not move them.
        entry = without_global_rng_effects(fn)
        setattr(entry, _ENTRY_MARK, True)
        _ENTRIES[name] = entry
        return entry

    return decorate


def entries() -> Dict[str, Callable]:
    """All hub entries of the plugin, by name."""
    for module in ENTRY_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a real missing dependency, not an absent family
                raise
    return dict(_ENTRIES)


def downstream_tasks() -> list[str]:
    """Names of the downstream tasks the plugin adds under s3prl.downstream."""
    if not DOWNSTREAM_DIR.is_dir():
        return []
    return sorted(p.name for p in DOWNSTREAM_DIR.iterdir() if (p / "expert.py").is_file())


def allow_runner_checkpoints() -> None:
    """Let torch >= 2.6 (weights_only=True) load s3prl runner checkpoints, which pickle argparse.Namespace."""
    import argparse

    import torch

    if hasattr(torch.serialization, "add_safe_globals"):
        torch.serialization.add_safe_globals([argparse.Namespace])


def _patch_hub(hub: ModuleType) -> None:
    allow_runner_checkpoints()
    for name, fn in entries().items():
        existing = getattr(hub, name, None)
        if existing is fn:
            continue
        if existing is not None and not getattr(existing, _ENTRY_MARK, False):
            raise RegistrationError(
                f"upstream_merged refuses to shadow the stock s3prl hub entry {name!r}; rename the plugin entry"
            )
        setattr(hub, name, fn)


def _patch_downstream(package: ModuleType) -> None:
    ours = str(DOWNSTREAM_DIR)
    if ours in list(package.__path__):
        return
    stock = set()
    for path in package.__path__:
        if os.path.isdir(path):
            stock.update(os.listdir(path))
    clash = sorted(set(downstream_tasks()) & stock)
    if clash:
        raise RegistrationError(f"upstream_merged refuses to shadow stock s3prl downstream task(s) {clash}")
    package.__path__.append(ours)


def patch_module(module: ModuleType) -> None:
    """Attach our entries to ``s3prl.hub`` or our tasks to ``s3prl.downstream``."""
    if module.__name__ == "s3prl.hub":
        _patch_hub(module)
    elif module.__name__ == "s3prl.downstream":
        _patch_downstream(module)


def register() -> None:
    """Explicitly (and idempotently) make s3prl see the plugin, for sessions started with ``python -S``."""
    from upstream_merged import _hook  # noqa: F401  (installs the import hook)

    hub = importlib.import_module("s3prl.hub")
    patch_module(hub)
    patch_module(importlib.import_module("s3prl.downstream"))


# What a stock run prints when s3prl did not see one of our names (the .pth hook found no upstream_merged to import).
_UNSEEN = re.compile(r"module 's3prl\.hub' has no attribute '(?P<entry>[^']+)'|No module named 's3prl\.downstream\.(?P<task>[^'.]+)")


def unseen_plugin_name(error: str) -> Optional[str]:
    """The plugin entry or task an error line says stock s3prl lacks, or None (another name, another error)."""
    found = _UNSEEN.search(error)
    if found is None:
        return None
    if found["entry"] is not None:
        return found["entry"] if found["entry"] in entries() else None
    return found["task"] if found["task"] in downstream_tasks() else None


def hook_problem(python: str, cwd: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """Why ``python`` (started in ``cwd`` with ``env``) would not see this plugin, or None when it does.

    The hook is a .pth line that imports ``upstream_merged`` if it can: an editable install whose
    checkout moved or was deleted leaves it silently off, and stock runs then fail on a missing entry.
    """
    ours = str(Path(__file__).resolve().parent)
    probe = "import importlib.util as u; s = u.find_spec('upstream_merged'); print(s.submodule_search_locations[0] if s else '')"
    try:
        done = subprocess.run([python, "-c", probe], cwd=cwd, env=dict(env) if env is not None else None,
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cannot start {python}: {err}"
    found = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not found:
        return (f"{python} cannot import upstream_merged outside this checkout, so the s3prl hook is off in stock "
                f"runs (an editable install whose checkout moved?): run tools/setup_env.sh from {Path(ours).parent}")
    if Path(found).resolve() != Path(ours):
        return (f"{python} imports upstream_merged from {found}, not from this checkout ({ours}): "
                f"run tools/setup_env.sh from {Path(ours).parent}")
    return None
