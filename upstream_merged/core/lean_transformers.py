"""Importing transformers' model classes without scikit-learn, which only its assisted text generation uses.

Every ``from transformers import SomeModel`` runs ``transformers.generation.candidate_generator``, which
imports ``sklearn.metrics.roc_curve`` at module import whenever scikit-learn is installed (librosa, which
s3prl needs, installs it). That pulls in scikit-learn, pandas and most of scipy: about 0.1 GB of resident
memory in every process that loads a speech encoder, a merge's included. Here that module is imported with
transformers' "sklearn is available" flag briefly off and given a ``roc_curve`` that imports scikit-learn on
its first call, so transformers behaves as before and only a caller of assisted generation pays the import.
"""
from __future__ import annotations

import importlib
import sys

CANDIDATE_GENERATOR = "transformers.generation.candidate_generator"


def _roc_curve(*args, **kwargs):
    """``sklearn.metrics.roc_curve``, imported on first use."""
    from sklearn.metrics import roc_curve

    return roc_curve(*args, **kwargs)


def defer_sklearn_import() -> bool:
    """Import transformers' generation helpers with scikit-learn deferred; True if this call did it.

    A no-op when they are already imported (s3prl or the user got there first) or when this transformers
    release has no such flag.
    """
    if CANDIDATE_GENERATOR in sys.modules:
        return False
    import_utils = importlib.import_module("transformers.utils.import_utils")
    available = getattr(import_utils, "_sklearn_available", None)
    if available is not True:
        return False
    import_utils._sklearn_available = False
    try:
        module = importlib.import_module(CANDIDATE_GENERATOR)
    finally:
        import_utils._sklearn_available = available
    if not hasattr(module, "roc_curve"):
        module.roc_curve = _roc_curve
    return True
