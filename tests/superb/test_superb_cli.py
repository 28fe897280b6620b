"""``python -m upstream_merged sweep`` builds the executor the flags ask for (spec's slurm section as defaults)."""
from pathlib import Path

import yaml

from upstream_merged.__main__ import main
from upstream_merged.superb.executors import LocalExecutor, SlurmExecutor
from upstream_merged.superb.results import SweepTable


def _spec_file(tmp_path) -> Path:
    spec = {"output_dir": "sweep", "entries": [{"name": "hubert_tiny"}],
            "slurm": {"partition": "short", "gpus_per_node": 2, "timeout_min": 60, "extra": {"qos": "high"}},
            "tasks": [{"name": "ks", "downstream": "speech_commands", "config": "c.yaml", "metric": "acc",
                       "higher_is_better": True}]}
    (tmp_path / "c.yaml").write_text("runner: {total_steps: 10}\n")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def _capture(monkeypatch):
    seen = {}

    def fake_run_sweep(spec, executor):
        seen.update(spec=spec, executor=executor)
        spec.sweep_dir.mkdir(parents=True, exist_ok=True)
        (spec.sweep_dir / "results.md").write_text("# results\n")
        return SweepTable(spec.sweep_dir, [], [], {}, {}, {}, [], {})

    monkeypatch.setattr("upstream_merged.superb.sweep.run_sweep", fake_run_sweep)
    return seen


def test_slurm_flags_override_the_spec(tmp_path, monkeypatch, capsys):
    seen = _capture(monkeypatch)
    assert main(["sweep", str(_spec_file(tmp_path)), "--executor", "slurm", "--cluster", "local", "--time", "30",
                 "--mem", "16", "--device", "cpu"]) == 0
    ex = seen["executor"]
    assert isinstance(ex, SlurmExecutor) and ex.cluster == "local" and ex.folder == tmp_path / "sweep" / "submitit"
    assert (ex.partition, ex.gpus_per_node, ex.timeout_min, ex.mem_gb, ex.extra) == ("short", 2, 30, 16, {"qos": "high"})
    assert seen["spec"].device == "cpu"
    assert "# results" in capsys.readouterr().out


def test_local_jobs_flag(tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    assert main(["sweep", str(_spec_file(tmp_path)), "--jobs", "3"]) == 0
    assert seen["executor"] == LocalExecutor(jobs=3)


def test_bad_spec_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "spec.yaml").write_text("output_dir: x\nentries: []\ntasks: []\n")
    assert main(["sweep", str(tmp_path / "spec.yaml")]) == 2
    err = capsys.readouterr().err
    assert "invalid sweep spec" in err and "entries" in err
