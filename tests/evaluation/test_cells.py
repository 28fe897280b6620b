"""Evidence-table cells: result keys, reuse of saved cells, the chance row."""
from __future__ import annotations

import json
import os

from upstream_merged.evaluation.cells import Job, Profile, Row, read_done, run_job, weights_read
from upstream_merged.evaluation.evalsets import speech_commands_task

PROFILE = Profile("t", (0,), {"max_steps": 20, "eval_step": 10, "patience": 2, "min_steps": 10}, 10, 5)


def test_result_key_follows_row_task_and_budget(tmp_path):
    task = speech_commands_task(tmp_path / "ks")
    row = Row("hubert_small", "hubert_small", "encoder", "speech")
    base = Job(row, task, PROFILE, str(tmp_path)).result_path
    assert base.parent == tmp_path / "results" and base.name.startswith("hubert_small-ks-")
    assert Job(row, task, PROFILE, str(tmp_path)).result_path == base
    other_budget = Profile("t", (0, 1), PROFILE.probe, 10, 5)
    assert Job(row, task, other_budget, str(tmp_path)).result_path != base
    assert Job(row, speech_commands_task(tmp_path / "other"), PROFILE, str(tmp_path)).result_path != base


def test_a_cell_key_covers_only_the_budget_its_row_reads(tmp_path):
    task = speech_commands_task(tmp_path / "ks")
    frozen = Row("hubert_small", "hubert_small", "encoder", "speech")
    tuned = Row("hconv_hubert", "hconv_hubert_small", "finetune", "hconv", finetune=True)
    longer_finetune = Profile("t", (0,), PROFILE.probe, 40, 20)
    longer_probe = Profile("t", (0,), {**PROFILE.probe, "max_steps": 40}, 10, 5)

    def path(row, profile):
        return Job(row, task, profile, str(tmp_path)).result_path

    assert path(frozen, longer_finetune) == path(frozen, PROFILE) != path(frozen, longer_probe)
    assert path(tuned, longer_probe) == path(tuned, PROFILE) != path(tuned, longer_finetune)


def test_a_sweep_cell_key_does_not_follow_where_the_work_dir_is(tmp_path):
    task = speech_commands_task(tmp_path / "ks")

    def key(work, text="alpha: 0.5\n"):
        recipe = work / "recipes" / "sweep_alpha0.50.yaml"
        recipe.parent.mkdir(parents=True, exist_ok=True)
        recipe.write_text(text)
        row = Row("aligned_0.5", "merged_hubert_mert_custom", "sweep", "a", ckpt=str(recipe), alpha=0.5, aligned=True)
        return Job(row, task, PROFILE, str(work)).result_path.relative_to(work)

    assert key(tmp_path / "home_a") == key(tmp_path / "home_b") != key(tmp_path / "home_c", "alpha: 0.6\n")


def test_a_cell_key_names_the_data_by_its_set_and_the_config_by_its_content(tmp_path):
    import shutil

    from upstream_merged.evaluation import evalsets
    from upstream_merged.evaluation.validate import TaskRun

    row = Row("hubert_small", "hubert_small", "encoder", "speech")

    def write_set(root, clips='{"clip": 1}\n'):
        (root / "speech_commands_v0.01").mkdir(parents=True)
        (root / "clips.jsonl").write_text(clips)
        return root

    def key(root, work):
        return Job(row, speech_commands_task(root), PROFILE, str(work)).result_path.name

    # the same set under another root, from another work dir: the same cell
    base = key(write_set(tmp_path / "sets_a"), tmp_path / "work_a")
    assert key(write_set(tmp_path / "elsewhere" / "sets_b"), tmp_path / "work_b") == base
    assert key(write_set(tmp_path / "sets_c", '{"clip": 2}\n'), tmp_path / "work_a") != base  # other clips
    assert evalsets.set_identity(tmp_path / "sets_a" / "speech_commands_v0.01").endswith("/speech_commands_v0.01")
    assert evalsets.set_identity(tmp_path / "no_set") == str(tmp_path / "no_set")  # no clips.jsonl: its path
    # the -c file by its name and content, not where the checkout is
    config = tmp_path / "clone_a" / "speech_commands_cpu_small.yaml"
    config.parent.mkdir()
    shutil.copy(evalsets.CONFIGS / config.name, config)
    run = speech_commands_task(tmp_path / "sets_a").run

    def key_with_config():
        task = evalsets.DomainTask(TaskRun(run.name, run.downstream, str(config), run.overrides), "speech")
        return Job(row, task, PROFILE, str(tmp_path)).result_path.name

    assert key_with_config() == base
    config.write_text(config.read_text() + "\n# edited\n")
    assert key_with_config() != base


def test_a_cell_key_names_the_rows_model_config_by_its_content(tmp_path):
    task = speech_commands_task(tmp_path / "ks")

    def key(clone, text="feat_type: mfcc\n"):
        config = tmp_path / clone / "upstream_configs" / "mfcc_no_cmvn.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(text)
        row = Row("mfcc", "baseline_local", "hand", "m", model_config=str(config))
        return Job(row, task, PROFILE, str(tmp_path / "work")).result_path.name

    assert key("clone_a") == key("clone_b") != key("clone_c", "feat_type: fbank\n")


def test_weights_read_by_a_row(tmp_path):
    assert weights_read(Row("chance", "", "chance", "c")) == ""
    snapshot = tmp_path / "step_000100"
    snapshot.mkdir()
    (snapshot / "model.safetensors").write_bytes(b"x")
    first = weights_read(Row("s", "hubert_small", "snapshot", "s", ckpt=str(snapshot)))
    (snapshot / "model.safetensors").write_bytes(b"xy")
    assert weights_read(Row("s", "hubert_small", "snapshot", "s", ckpt=str(snapshot))) != first
    assert len(weights_read(Row("h", "hubert_small", "encoder", "h"))) == 64  # the shipped encoders' digest
    recipe = tmp_path / "recipes" / "sweep_alpha0.50.yaml"
    recipe.parent.mkdir()
    recipe.write_text("alpha: 0.5\n")
    swept = weights_read(Row("a", "merged_hubert_mert_custom", "sweep", "a", ckpt=str(recipe)))
    os.utime(recipe, ns=(1, 1))  # a tarball keeps whole seconds: the key must not follow the mtime
    (recipe.parent / "other.yaml").write_text("alpha: 0.7\n")
    assert weights_read(Row("a", "merged_hubert_mert_custom", "sweep", "a", ckpt=str(recipe))) == swept
    recipe.write_text("alpha: 0.6\n")
    assert weights_read(Row("a", "merged_hubert_mert_custom", "sweep", "a", ckpt=str(recipe))) != swept


def test_chance_cell_and_reuse(tmp_path, speech_commands_root):
    job = Job(Row("chance", "", "chance", "chance"), speech_commands_task(speech_commands_root), PROFILE, str(tmp_path))
    result = run_job(job)
    (seed,) = result["seeds"]
    labels = list(seed["correct"].values())
    assert 0 < seed["accuracy"] < 1 and seed["accuracy"] == sum(labels) / len(labels)
    saved = job.result_path.read_text()
    job.result_path.write_text(json.dumps({**json.loads(saved), "marker": 1}))  # a saved cell is read, not rerun
    assert run_job(job)["marker"] == 1
    assert read_done([job])[job.key]["marker"] == 1


def test_a_failing_cell_is_logged_and_the_others_still_run(tmp_path, speech_commands_root, caplog):
    from upstream_merged.evaluation.cells import run_jobs

    task = speech_commands_task(speech_commands_root)
    good = Job(Row("chance", "", "chance", "chance"), task, PROFILE, str(tmp_path))
    bad = Job(Row("broken", "no_such_upstream_entry", "encoder", "broken"), task, PROFILE, str(tmp_path))
    with caplog.at_level("ERROR"):
        done = run_jobs([bad, good], workers=1)
    assert set(done) == {good.key} and not bad.result_path.exists()
    assert "broken on ks failed" in caplog.text


def test_cells_sharing_a_build_or_an_extraction_are_kept_apart(tmp_path):
    from upstream_merged.evaluation.cells import _conflicts
    from upstream_merged.evaluation.evalsets import nsynth_task

    ks = speech_commands_task(tmp_path / "ks")
    pitch, instrument = nsynth_task(tmp_path / "nsynth", "pitch"), nsynth_task(tmp_path / "nsynth", "instrument")
    merge = Row("linear", "merged_hubert_mert_linear_small", "merge", "m")
    job = lambda row, task: Job(row, task, PROFILE, str(tmp_path))  # noqa: E731
    upstream = (merge.entry, merge.ckpt, merge.model_config)
    assert _conflicts(job(merge, ks), set()) & _conflicts(job(merge, pitch), set())  # first build of one merge
    built = {upstream}
    assert not _conflicts(job(merge, ks), built) & _conflicts(job(merge, pitch), built)
    assert _conflicts(job(merge, pitch), built) & _conflicts(job(merge, instrument), built)  # one NSynth extraction
    other = Row("avg", "merged_hubert_mert_avg_small", "merge", "a")
    assert not _conflicts(job(other, instrument), set()) & _conflicts(job(merge, pitch), built)
    fusion = Row("fusion_hconv", "fusion_hubert_mert_small_hconv", "finetune", "f", finetune=True)
    assert not _conflicts(job(fusion, pitch), {("fusion_hubert_mert_small_hconv", None, None)})


def test_fine_tuned_cells_share_one_frozen_memo_in_the_work_dir(tmp_path, monkeypatch):
    from upstream_merged.evaluation import cells, validate
    from upstream_merged.fusion.memo import MEMO_ENV, STORE_AFTER_ENV

    seen = []

    def fake_run_stock(entry, task, seed, sweep_dir, env=None, **kwargs):
        seen.append((entry, seed, env))
        return validate.StockRun(0.5, {"a": True, "b": False}, 1.0, "log", str(sweep_dir), [(5, 0.4), (10, 0.5)])

    monkeypatch.setattr(validate, "run_stock", fake_run_stock)
    tuned = Row("hconv_hubert", "hconv_hubert_small", "finetune", "hconv", finetune=True)
    job = Job(tuned, speech_commands_task(tmp_path / "ks"), PROFILE, str(tmp_path))
    out = cells.finetune_results(job)
    assert [(entry, seed) for entry, seed, _ in seen] == [("hconv_hubert_small", 0)]
    assert seen[0][2][MEMO_ENV] == str(tmp_path / "frozen_memo") and seen[0][2]["OMP_NUM_THREADS"] == "1"
    assert seen[0][2][STORE_AFTER_ENV] == "2"  # random crops (voxceleb1, ks _silence_) are never written
    assert out[0]["accuracy"] == 0.5 and out[0]["best_step"] == 10
    assert PROFILE.budget_of(tuned)["frozen_memo"] == cells.FROZEN_MEMO_FORMAT
