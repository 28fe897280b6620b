"""Upstream wrappers: s3prl-contract modules around the loaded encoders."""
from upstream_merged.core.lean_transformers import defer_sklearn_import

defer_sklearn_import()  # before any transformers model import below: keeps scikit-learn out of the process
