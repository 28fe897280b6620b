"""Merged and fused speech/music encoders as s3prl upstreams.

Importing this package is cheap; the heavy parts load when an entry is used.
"""
__version__ = "0.1.0"


def register() -> None:
    """Make ``s3prl.hub`` and ``s3prl.downstream`` see the plugin (idempotent)."""
    from upstream_merged.registry import register as _register

    _register()
