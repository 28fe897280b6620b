"""Registration without editing s3prl: hub entries, downstream tasks, shadowing refusal, explicit register()."""
import importlib
import os
import subprocess
import sys
import textwrap
import types

import pytest

from upstream_merged import registry
from upstream_merged.testing.s3prl_run import stock_script

BASELINES = ["hubert_base_hf", "mert_v0_public", "mert_v1_95m", "hubert_tiny", "mert_v1_tiny"]


def test_stock_run_downstream_help_lists_entries():
    """The stock script, run as users run it, accepts our names (it lists them in its -u help)."""
    out = subprocess.run([sys.executable, str(stock_script()), "-h"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in BASELINES:
        assert name in out.stdout


def test_options_and_s3prl_upstream_see_entries():
    import s3prl.hub as hub
    from s3prl.nn import S3PRLUpstream

    options = hub.options()
    for name in BASELINES:
        assert name in options and callable(getattr(hub, name))
    upstream = S3PRLUpstream("hubert_tiny")
    assert upstream.num_layers == 3 and upstream.downsample_rates == [320] * 3


def test_every_declared_entry_is_in_the_hub():
    import s3prl.hub as hub

    for name, fn in registry.entries().items():
        assert getattr(hub, name) is fn


def test_register_is_idempotent():
    import s3prl.hub as hub

    before = {name: getattr(hub, name) for name in registry.entries()}
    registry.register()
    registry.register()
    assert {name: getattr(hub, name) for name in registry.entries()} == before


def test_refuses_to_shadow_a_stock_entry(monkeypatch):
    fake_hub = types.ModuleType("s3prl.hub")
    fake_hub.hubert_tiny = lambda *a, **k: None  # a stock function of the same name
    with pytest.raises(registry.RegistrationError, match="hubert_tiny"):
        registry.patch_module(fake_hub)


def test_declaring_a_name_twice_is_an_error():
    registry.hub_entry("probe_entry_for_test")(lambda: None)
    with pytest.raises(registry.RegistrationError, match="probe_entry_for_test"):
        registry.hub_entry("probe_entry_for_test")(lambda: None)
    registry._ENTRIES.pop("probe_entry_for_test")


def _task(root, name):
    task = root / name
    task.mkdir()
    (task / "__init__.py").write_text("")
    (task / "expert.py").write_text(textwrap.dedent('''
        import torch
        class DownstreamExpert(torch.nn.Module):
            MARK = "plugin task"
    '''))


def test_plugin_downstream_task_imports_as_s3prl_downstream(tmp_path, monkeypatch):
    import s3prl.downstream as downstream

    _task(tmp_path, "probe_task")
    monkeypatch.setattr(registry, "DOWNSTREAM_DIR", tmp_path)
    monkeypatch.setattr(downstream, "__path__", list(downstream.__path__))
    registry.patch_module(downstream)
    expert = importlib.import_module("s3prl.downstream.probe_task.expert")
    assert expert.DownstreamExpert.MARK == "plugin task"
    sys.modules.pop("s3prl.downstream.probe_task.expert", None)
    sys.modules.pop("s3prl.downstream.probe_task", None)


def test_plugin_task_may_not_shadow_a_stock_task(tmp_path, monkeypatch):
    import s3prl.downstream as downstream

    _task(tmp_path, "speech_commands")
    monkeypatch.setattr(registry, "DOWNSTREAM_DIR", tmp_path)
    monkeypatch.setattr(downstream, "__path__", list(downstream.__path__))
    with pytest.raises(registry.RegistrationError, match="speech_commands"):
        registry.patch_module(downstream)


def test_explicit_register_works_without_the_pth():
    """`python -S` skips .pth files; upstream_merged.register() is the explicit route."""
    import site

    code = (
        "import sys; sys.path[:0] = %r; import upstream_merged; upstream_merged.register(); "
        "import s3prl.hub as h; print('hubert_tiny' in h.options())" % (site.getsitepackages() + sys.path[:1],)
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("True")


def test_hook_problem_names_an_interpreter_that_cannot_see_this_checkout(tmp_path):
    assert registry.hook_problem(sys.executable, cwd=str(tmp_path)) is None  # this venv's hook finds this checkout

    no_site = tmp_path / "python_no_site"  # no .pth processing: like an editable install whose checkout is gone
    no_site.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    no_site.chmod(0o755)
    problem = registry.hook_problem(str(no_site), cwd=str(tmp_path))
    assert "cannot import upstream_merged" in problem and "tools/setup_env.sh" in problem

    other = tmp_path / "elsewhere" / "upstream_merged"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    problem = registry.hook_problem(sys.executable, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": str(other.parent)})
    assert f"from {other}" in problem


def test_unseen_plugin_name_is_only_ours():
    assert registry.unseen_plugin_name("AttributeError: module 's3prl.hub' has no attribute 'hubert_tiny'") == "hubert_tiny"
    assert registry.unseen_plugin_name("AttributeError: module 's3prl.hub' has no attribute 'nope_entry'") is None  # a typo
    task = registry.downstream_tasks()[0]
    assert registry.unseen_plugin_name(f"ModuleNotFoundError: No module named 's3prl.downstream.{task}'") == task
    assert registry.unseen_plugin_name("ModuleNotFoundError: No module named 's3prl.downstream.nope.expert'") is None
    assert registry.unseen_plugin_name("RuntimeError: CUDA out of memory") is None
