import pytest
import torch

from upstream_merged.evaluation.features import Upstream, cached_split
from upstream_merged.evaluation.tasks import TaskSetup, UnsupportedTask, apply_overrides, seed_everything
from upstream_merged.testing.s3prl_run import CONFIG_DIR


def test_overrides_are_parsed_like_run_downstream_o():
    config = {"runner": {"total_steps": 40}, "downstream_expert": {"datarc": {"root": "UNSET"}}}
    out = apply_overrides(config, {"config.runner.total_steps": "300", "config.runner.eval_dataloaders": "['dev']",
                                   "config.downstream_expert.datarc.root": "/data/x", "config.new.key": 2})
    assert out["runner"] == {"total_steps": 300, "eval_dataloaders": ["dev"]}
    assert out["downstream_expert"]["datarc"]["root"] == "/data/x" and out["new"] == {"key": 2}
    assert config["runner"]["total_steps"] == 40  # the input is left alone
    with pytest.raises(ValueError, match="config.<section>"):
        apply_overrides(config, {"args.seed": 1})


def test_batches_are_the_stock_dataloaders_draws(ks_task, make_setup):
    setup = make_setup(ks_task)
    expert = setup.build_expert(upstream_dim=8, upstream_rate=320)
    seed_everything(3)
    ours = list(setup.batches(expert, "train"))
    seed_everything(3)
    stock = [list(labels) for _, labels, _ in expert.get_dataloader("train")]  # what the runner iterates (loads audio)
    assert [[setup.clips("train")[i].label for i in batch] for batch in ours] == stock
    assert all(len(batch) == 8 for batch in ours)  # speech_commands' train loader drops the last partial batch


def test_a_task_without_a_clip_reader_is_refused_by_name(fluent_commands_root, tmp_path):
    with pytest.raises(UnsupportedTask, match="fluent_commands.*stock"):
        TaskSetup.from_files("fluent_commands", CONFIG_DIR / "fluent_commands_cpu_small.yaml",
                             {"config.downstream_expert.datarc.file_path": str(fluent_commands_root)}, expdir=tmp_path)


def test_voxceleb1_train_clips_longer_than_max_timestep_are_cached_as_crops(voxceleb1_root, tmp_path, feature_root):
    setup = TaskSetup.from_files("voxceleb1", CONFIG_DIR / "voxceleb1_cpu_small.yaml", {
        "config.downstream_expert.datarc.file_path": str(voxceleb1_root),
        "config.downstream_expert.datarc.meta_data": str(voxceleb1_root / "iden_split.txt"),
        "config.downstream_expert.datarc.max_timestep": 8000}, expdir=tmp_path)
    assert setup.crop_length("train", 0) == 8000 and setup.crop_length("test", 0) is None
    split = cached_split(Upstream("hubert_tiny"), setup, "train", root=feature_root, progress=False)
    assert len(split.rows.clip) > len(split)  # several fixed crops per long clip
    assert (split.rows.samples == 8000).all() and (split.rows.frames == 24).all()  # the CNN gives 24 frames for 0.5 s
    assert split.uids[0] == setup.clips("train")[0].uid and split.uids[0].startswith("id1")


def test_measuring_an_upstreams_rng_use_leaves_the_rng_alone():
    upstream = Upstream("hubert_tiny")
    upstream.model  # noqa: B018 - loaded first: only the measurement is under test
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    draws = upstream.rng_draws_per_forward
    assert torch.equal(torch.rand(1), expected)
    assert draws == len(upstream.model.model.encoder.layers)  # transformers' LayerDrop draw, one per layer
