"""Loading an encoder keeps scikit-learn out of the process; transformers' generation helpers still work."""
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")  # without it there is nothing to defer

PROBE = """
import sys
import upstream_merged.models.hubert, upstream_merged.upstream.hubert
print("sklearn" in sys.modules, "pandas" in sys.modules)
import transformers.generation.candidate_generator as generator
print(generator.roc_curve([0, 1, 1], [0.1, 0.8, 0.6])[1].tolist(), "sklearn" in sys.modules)
"""


def test_encoder_imports_leave_sklearn_out_until_roc_curve_is_called():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    first, second = done.stdout.strip().splitlines()[-2:]
    assert first == "False False"
    assert second == "[0.0, 0.5, 1.0, 1.0] True"  # the deferred roc_curve is sklearn's, imported on first call


def test_a_second_call_or_an_earlier_import_changes_nothing():
    from upstream_merged.core.lean_transformers import defer_sklearn_import
    import transformers.generation.candidate_generator  # noqa: F401
    import transformers.utils.import_utils as import_utils

    flag = import_utils._sklearn_available
    assert defer_sklearn_import() is False
    assert import_utils._sklearn_available is flag


def test_stock_s3prl_hub_starts_without_sklearn_through_the_plugin_hook():
    """run_downstream.py imports s3prl.hub; the .pth hook defers transformers' sklearn import before it executes."""
    probe = ("import sys; import s3prl.hub as hub; "
             "print('sklearn' in sys.modules, hasattr(hub, 'hubert_small'), hasattr(hub, 'hubert'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False True True"
