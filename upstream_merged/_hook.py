"""Post-import hook that lets stock s3prl see this plugin's hub entries and downstream tasks.

A one-line ``upstream_merged.pth`` in site-packages imports this module at interpreter start.
It must stay cheap: it imports nothing heavy and only patches ``s3prl.hub`` and
``s3prl.downstream`` right after s3prl itself has executed them.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

# stock s3prl modules that upstream_merged.stock_patches fixes right after they execute
_STOCK_FIXES = ("s3prl.downstream.voxceleb1.dataset", "s3prl.downstream.ctc", "s3prl.downstream.ctc.data")
_PATCHED_MODULES = ("s3prl.hub", "s3prl.downstream") + _STOCK_FIXES


def _patch(module) -> None:
    """Register the plugin in s3prl.hub / s3prl.downstream, or fix a stock downstream (see stock_patches)."""
    # deferred imports: heavy modules only when s3prl is used
    if module.__name__ in _STOCK_FIXES:
        from upstream_merged import stock_patches

        stock_patches.apply(module)
    else:
        from upstream_merged import registry

        registry.patch_module(module)


class _PatchingLoader(importlib.abc.Loader):
    """Wraps the real loader and runs our registration right after the module executes."""

    def __init__(self, wrapped: importlib.abc.Loader):
        self._wrapped = wrapped

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module):
        if module.__name__ == "s3prl.hub":
            _before_hub()
        self._wrapped.exec_module(module)
        _patch(module)


def _before_hub() -> None:
    """s3prl.hub imports transformers' models, which import scikit-learn for assisted generation only: defer it.

    Every ``run_downstream.py`` then starts without scikit-learn, pandas and most of scipy (core.lean_transformers).
    """
    try:
        from upstream_merged.core.lean_transformers import defer_sklearn_import
    except ImportError:  # a broken plugin install must not stop stock s3prl
        return
    try:
        defer_sklearn_import()
    except ImportError:  # transformers missing or of another layout: s3prl.hub reports it as before
        pass


class _S3prlFinder(importlib.abc.MetaPathFinder):
    """Finds s3prl.hub / s3prl.downstream through the normal path and wraps their loaders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _PATCHED_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or isinstance(spec.loader, _PatchingLoader):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Insert the finder once; patch modules that were imported before us."""
    if not any(isinstance(f, _S3prlFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _S3prlFinder())
    for name in _PATCHED_MODULES:
        if name in sys.modules:
            _patch(sys.modules[name])


install()
