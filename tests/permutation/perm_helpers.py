"""Helpers shared by the permutation-merge tests: tiny model pairs on disk and small recipes."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from upstream_merged.permutation.apply import apply_permutations, random_permutations
from upstream_merged.permutation.spec import spec_for_model
from upstream_merged.recipe import parse_recipe
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir

SMALL_CALIBRATION = {"synthetic": {"clips": 6, "seconds": 1.5}, "batch_size": 3, "frames_per_second": None,
                     "cnn_frames_per_second": None}
SCRAMBLED = ("cnn", "ffn", "attn", "residual")


def scrambled_copy(model, seed: int, components=SCRAMBLED) -> Tuple[torch.nn.Module, Dict[str, torch.Tensor]]:
    """A function-preserving random permutation of ``model`` across ``components`` and the permutations used."""
    spec = spec_for_model(model)
    perms = random_permutations(spec, spec.select(components), torch.Generator().manual_seed(seed))
    copy = build_tiny_hubert(seed + 500, **_overrides(model))
    copy.load_state_dict(apply_permutations(model.state_dict(), spec, perms))
    return copy.eval(), perms


def _overrides(model) -> dict:
    config = model.config
    return dict(do_stable_layer_norm=config.do_stable_layer_norm, feat_extract_norm=config.feat_extract_norm,
                conv_bias=config.conv_bias, intermediate_size=config.intermediate_size,
                num_attention_heads=config.num_attention_heads)


def write_pair(root: Path, a, b) -> Tuple[Path, Path]:
    """Write two models as HF dirs root/a and root/b."""
    return write_hubert_dir(Path(root) / "a", a), write_hubert_dir(Path(root) / "b", b)


def make_recipe(dir_a, dir_b, calibration: Optional[dict] = None, **fields):
    """A validated permutation recipe over two local dirs (small synthetic calibration, no heatmaps by default)."""
    data = {"method": "permutation", "sources": {"a": str(dir_a), "b": str(dir_b)},
            "calibration": calibration or SMALL_CALIBRATION, "report": {"heatmap_groups": []}}
    data.update(fields)
    return parse_recipe(data)


def recipe_yaml(dir_a, dir_b, calibration: Optional[dict] = None, **fields) -> str:
    """The same recipe as YAML text."""
    import yaml

    data = {"method": "permutation", "sources": {"a": str(dir_a), "b": str(dir_b)},
            "calibration": calibration or SMALL_CALIBRATION}
    data.update(fields)
    return yaml.safe_dump(data, sort_keys=False)


