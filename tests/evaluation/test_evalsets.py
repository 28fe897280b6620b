"""The evaluation tasks point the stock configs at the written sets and refuse missing data by name."""
import pytest

from upstream_merged.evaluation.evalsets import nsynth_task, power_tasks, speech_commands_task


def make_tree(root):
    for path in ("speech_commands/speech_commands_v0.01", "speech_commands/speech_commands_test_set_v0.01", "nsynth"):
        (root / path).mkdir(parents=True)
    (root / "voxceleb1").mkdir()
    (root / "voxceleb1" / "iden_split.txt").write_text("")


def test_power_tasks_cover_both_domains(tmp_path):
    make_tree(tmp_path)
    tasks = power_tasks(tmp_path)
    assert [(t.name, t.domain, t.run.downstream) for t in tasks] == [
        ("ks", "speech", "speech_commands"), ("sid", "speech", "voxceleb1"),
        ("pitch", "music", "nsynth_pitch"), ("instrument", "music", "nsynth_instrument")]
    assert tasks[1].run.overrides["config.downstream_expert.datarc.meta_data"] == str(tmp_path / "voxceleb1" / "iden_split.txt")
    # sid trains on whole clips (SUPERB's 8 s crop, longer than any clip of the power set): the -f memo hits
    assert tasks[1].run.overrides["config.downstream_expert.datarc.max_timestep"] == 128000


def test_missing_data_is_refused_naming_the_task(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "voxceleb1" / "iden_split.txt").unlink()
    with pytest.raises(SystemExit, match=r"\['sid'\]"):
        power_tasks(tmp_path)
    assert [t.name for t in power_tasks(tmp_path, ["ks", "pitch"])] == ["ks", "pitch"]


def test_unknown_task_names_are_refused(tmp_path):
    make_tree(tmp_path)
    with pytest.raises(ValueError, match="genre"):
        power_tasks(tmp_path, ["ks", "genre"])


def test_single_task_builders(tmp_path):
    assert speech_commands_task(tmp_path, name="kw").name == "kw"
    music = nsynth_task(tmp_path, "pitch", max_seconds=2.0)
    assert music.run.overrides["config.downstream_expert.datarc.max_seconds"] == 2.0 and music.domain == "music"
    with pytest.raises(ValueError, match="timbre"):
        nsynth_task(tmp_path, "timbre")


def test_written_set_writes_once_and_refuses_unknown_layouts(tmp_path):
    from upstream_merged.evaluation.evalsets import written_set

    with pytest.raises(ValueError, match="no dataset layout 'nope'"):
        written_set(tmp_path, "nope", [])
    args = ["--instruments", "1", "1", "1", "--notes-per-instrument", "2"]
    first = written_set(tmp_path, "nsynth", args)
    assert first.name.startswith("nsynth-") and (first / "nsynth-test" / "examples.json").is_file()
    stamp = first.stat().st_mtime_ns
    assert written_set(tmp_path, "nsynth", args) == first and first.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob(".*partial*"))
    assert written_set(tmp_path, "nsynth", args[:-1] + ["3"]) != first


def test_demo_tasks_draw_their_sets_like_the_evaluation_sets(tmp_path, monkeypatch):
    """The quick table's sets come from the evaluation sets' profiles (power speech, sampled instruments)."""
    from upstream_merged.evaluation import evalsets

    asked = {}

    def fake_written_set(data_dir, layout, args):
        asked[layout] = list(args)
        root = tmp_path / layout
        root.mkdir(exist_ok=True)
        return root

    monkeypatch.setattr(evalsets, "written_set", fake_written_set)
    tasks = evalsets.demo_tasks(tmp_path)
    assert [(t.name, t.domain) for t in tasks] == [("ks", "speech"), ("pitch", "music")]
    assert asked["speech_commands"][:2] == ["--profile", "power"]
    assert asked["nsynth"][:2] == ["--profile", "sampled"]
    assert tasks[1].run.overrides["config.downstream_expert.datarc.max_seconds"] == 1.0
