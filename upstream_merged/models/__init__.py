"""Loading encoders from HF directories, hub ids and published checkpoints (transformers model classes)."""
from upstream_merged.core.lean_transformers import defer_sklearn_import

defer_sklearn_import()  # before any transformers model import below: keeps scikit-learn out of the process
