"""Sweep spec validation: strict keys, consistent labels/tasks, reference direction, -o syntax, relative paths."""
import pytest

from upstream_merged.superb.spec import load_spec, parse_spec


def _spec(**changes) -> dict:
    spec = {"output_dir": "out", "entries": [{"name": "hubert_tiny"}],
            "tasks": [{"name": "ks", "downstream": "speech_commands", "config": "c.yaml", "metric": "acc",
                       "higher_is_better": True}]}
    spec.update(changes)
    return spec


def test_minimal_spec_defaults():
    spec = parse_spec(_spec())
    assert spec.seeds == [1337] and spec.device == "cuda"
    assert spec.entries[0].key == "hubert_tiny"
    assert spec.tasks[0].split == "test" and spec.tasks[0].leaderboard_task == "ks"


@pytest.mark.parametrize("changes, message", [
    ({"entires": []}, "entires"),
    ({"entries": [{"name": "a", "ckpts": "x"}]}, "ckpts"),
    ({"entries": [{"name": "a"}, {"name": "a"}]}, "entry labels repeat"),
    ({"entries": [{"name": "a", "tasks": ["sid"]}]}, "'sid'"),
    ({"reference_entry": "mert"}, "reference_entry 'mert'"),
    ({"seeds": [1, 1]}, "seeds repeat"),
    ({"entries": [{"name": "a", "overrides": {"optimizer.lr": 1}}]}, "must start with 'config.' or 'args.'"),
    ({"entries": [{"name": "a", "label": "a/b"}]}, "label"),
])
def test_invalid_specs_name_the_key(changes, message):
    with pytest.raises(ValueError, match="invalid sweep spec") as err:
        parse_spec(_spec(**changes))
    assert message in str(err.value)


def test_reference_must_agree_with_direction():
    task = {"name": "asr", "downstream": "asr", "config": "c.yaml", "metric": "wer", "higher_is_better": False,
            "reference": {"baseline": 0.2, "sota": 0.3}}
    with pytest.raises(ValueError, match="contradicts higher_is_better=False"):
        parse_spec(_spec(tasks=[task]))


def test_two_ctc_tasks_need_an_explicit_leaderboard_key():
    task = {"name": "pr", "downstream": "ctc", "config": "c.yaml", "metric": "per", "higher_is_better": False}
    assert parse_spec(_spec(tasks=[task])).tasks[0].leaderboard_task is None
    assert parse_spec(_spec(tasks=[{**task, "superb_task": "pr"}])).tasks[0].leaderboard_task == "pr"
    assert parse_spec(_spec(tasks=[{**task, "superb_task": "none"}])).tasks[0].leaderboard_task is None


def test_paths_are_relative_to_the_spec_file(tmp_path, monkeypatch):
    (tmp_path / "c.yaml").write_text("runner: {}\n")
    (tmp_path / "spec.yaml").write_text(
        "output_dir: sweeps/x\nentries: [{name: hubert_tiny, ckpt: 'tiny:hubert:0'}]\n"
        "tasks: [{name: ks, downstream: speech_commands, config: c.yaml, metric: acc, higher_is_better: true,\n"
        "         overrides: {config.x: $DATA/a}}]\n")
    monkeypatch.setenv("DATA", "/data")
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.sweep_dir == tmp_path / "sweeps" / "x"
    assert spec.resolve("c.yaml") == str(tmp_path / "c.yaml")
    assert spec.resolve("tiny:hubert:0") == "tiny:hubert:0"  # not a path: unchanged
    assert spec.resolve("$DATA/a") == "/data/a"


def test_missing_spec_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nospec.yaml"):
        load_spec(tmp_path / "nospec.yaml")


def test_shipped_examples_validate_and_name_existing_configs(monkeypatch, tmp_path):
    from pathlib import Path

    from upstream_merged.superb.commands import plan_sweep

    monkeypatch.setenv("DATA", str(tmp_path))
    monkeypatch.setenv("SWEEP_DIR", str(tmp_path / "sweep"))
    monkeypatch.setenv("SUPERB_DATA", str(tmp_path))
    examples = Path(__file__).resolve().parents[2] / "upstream_merged" / "superb" / "examples"
    tiny, superb = load_spec(examples / "tiny_cpu.yaml"), load_spec(examples / "superb_slurm.yaml")
    assert len(plan_sweep(tiny)) == 3 * 2 * 2 and tiny.sweep_dir == tmp_path / "sweep"
    assert len(plan_sweep(superb)) == 4 * 14
    assert [t.leaderboard_task for t in superb.tasks] == [
        "pr", "ks", "ic", "sid", "er_fold1", "er_fold2", "er_fold3", "er_fold4", "er_fold5", "asr", "qbe", "sf", "sv", "sd"]
    for spec in (tiny, superb):
        assert all(Path(spec.resolve(t.config)).is_file() for t in spec.tasks)
