"""Building or loading an entry never changes the global RNGs (torch, numpy, random) nor os.environ.

s3prl's run_downstream.py seeds the global generators, then builds the upstream, the Featurizer and
the downstream: anything the build draws or re-seeds changes the downstream's init, differently on a
cache miss than on a cache hit.
"""
import random

import numpy as np
import pytest
import torch

from upstream_merged.hub.common import packaged_recipe
from upstream_merged.recipe import load_recipe, methods
from upstream_merged.registry import entries
from upstream_merged.testing.contract import assert_keeps_global_state

TINY_ENTRIES = sorted(name for name in entries() if name.endswith("_tiny"))
# One entry per family for the (dearer) mirrored s3prl run.
FAMILY_ENTRIES = ["mert_v1_tiny", "merged_hubert_mert_tiny", "beats_tiny", "mam_hubert_bert_tiny",
                  "lmam_beats_bert_tiny", "fusion_hubert_wavlm_gumd_tiny"]


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """A plugin cache of this test alone, so the first build is a real cache miss (tiny writers, merge)."""
    monkeypatch.setenv("UPSTREAM_MERGED_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _seed_everything(seed: int) -> None:
    """What s3prl's run_downstream.py does with --seed before it builds anything."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.mark.parametrize("name", TINY_ENTRIES)
def test_entry_build_and_cached_load_keep_global_state(name, empty_cache):
    _seed_everything(5)
    assert_keeps_global_state(lambda: entries()[name](), f"{name} (first build, empty cache)")
    assert_keeps_global_state(lambda: entries()[name](), f"{name} (second build, warm cache)")


def test_tiny_writers_keep_global_state(empty_cache, tmp_path):
    from upstream_merged.tiny import materialize_tiny, tiny_architectures
    from upstream_merged.tiny.beats import build_tiny_beats, tiny_beats_config, write_beats_checkpoint
    from upstream_merged.tiny.fusion import build_tiny_wavlm, build_tiny_whisper
    from upstream_merged.tiny.hubert import build_tiny_hubert
    from upstream_merged.tiny.text_image import write_bert_dir, write_vit_dir

    for arch in tiny_architectures():
        assert_keeps_global_state(lambda: materialize_tiny(f"tiny:{arch}:3"), f"tiny writer {arch}")
    builders = {
        "build_tiny_hubert": lambda: build_tiny_hubert(3),
        "build_tiny_beats": lambda: build_tiny_beats(3),
        "write_beats_checkpoint": lambda: write_beats_checkpoint(tmp_path / "b.pt", tiny_beats_config(), 3),
        "build_tiny_wavlm": lambda: build_tiny_wavlm(3),
        "build_tiny_whisper": lambda: build_tiny_whisper(3),
        "write_bert_dir": lambda: write_bert_dir(tmp_path / "bert", 3),
        "write_vit_dir": lambda: write_vit_dir(tmp_path / "vit", 3),
    }
    for what, build in builders.items():
        assert_keeps_global_state(build, what)


def test_permutation_merge_calibration_and_synthetic_audio_keep_global_state(empty_cache, tmp_path):
    from upstream_merged.permutation.audio import list_clips, load_clip
    from upstream_merged.permutation.merge import align, load_sources

    recipe = load_recipe(packaged_recipe("tiny_hubert_mert"))
    _, components, _ = recipe.settings()
    encoder_a, encoder_b, _, _ = load_sources(recipe)
    calibration = recipe.calibration
    refs = assert_keeps_global_state(lambda: list_clips(calibration, recipe.seed), "list_clips")
    assert_keeps_global_state(lambda: [load_clip(r, calibration.clip_seconds) for r in refs], "synthetic audio")
    assert_keeps_global_state(
        lambda: align(encoder_a, encoder_b, components, calibration, recipe.seed, progress=False, refs=refs[:4]),
        "calibration + matching")
    assert_keeps_global_state(lambda: methods()["permutation"].build(recipe, tmp_path / "out", progress=False),
                              "permutation merge build")


def test_lmam_and_fusion_init_keep_global_state(empty_cache):
    from upstream_merged.fusion.build import resolve_fusion_sources
    from upstream_merged.fusion.backbones import load_backbone
    from upstream_merged.fusion.model import FusionUpstream
    from upstream_merged.mam.upstream import learnable_upstream

    for name in ("tiny_lmam_hubert_bert", "tiny_lmam_beats_vit"):
        recipe = load_recipe(packaged_recipe(name))
        assert_keeps_global_state(lambda: learnable_upstream(recipe), f"L-MAM init ({name})")
    for name in ("tiny_fusion_hubert_wavlm_gumd", "tiny_fusion_hubert_wavlm_hconv"):
        recipe = load_recipe(packaged_recipe(name))
        dirs = resolve_fusion_sources(recipe)
        backbones = {role: load_backbone(dirs[role], recipe.options.whisper_context) for role in recipe.sources}
        first = assert_keeps_global_state(lambda: FusionUpstream(backbones, recipe.spec(), seed=recipe.seed),
                                          f"fusion interface init ({name})")
        again = FusionUpstream(backbones, recipe.spec(), seed=recipe.seed)
        assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters())), "interface init not seeded"


def _first_step_downstream(name: str, seed: int) -> dict:
    """Mirror run_downstream.py: seed, build upstream, Featurizer, downstream; one optimiser step; its parameters."""
    from s3prl.upstream.interfaces import Featurizer

    _seed_everything(seed)
    upstream = entries()[name]()
    featurizer = Featurizer(upstream, upstream_device="cpu")  # probes with the global torch.randn, as in s3prl
    downstream = torch.nn.Sequential(torch.nn.Linear(featurizer.output_dim, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    optimizer = torch.optim.SGD([*downstream.parameters(), *featurizer.parameters()], lr=0.1)
    wavs = [torch.randn(4000 + 160 * i) for i in range(2)]  # the data order would come from the global RNG too
    with torch.no_grad():
        paired = upstream(wavs)
    features = torch.stack([f.mean(dim=0) for f in featurizer(wavs, paired)])
    labels = torch.randint(0, 4, (2,))
    torch.nn.functional.cross_entropy(downstream(features), labels).backward()
    optimizer.step()
    return {k: v.detach().clone() for k, v in {**downstream.state_dict(), **featurizer.state_dict()}.items()}


@pytest.mark.parametrize("name", FAMILY_ENTRIES)
def test_same_seed_same_downstream_whether_built_or_cached(name, empty_cache):
    built = _first_step_downstream(name, seed=1337)  # empty cache: tiny writers and the merge run here
    cached = _first_step_downstream(name, seed=1337)  # warm cache: everything is loaded
    assert built.keys() == cached.keys()
    differ = [k for k in built if not torch.equal(built[k], cached[k])]
    assert not differ, f"{name}: downstream parameters differ between a cache miss and a cache hit: {differ}"
