"""Tiny BEATs checkpoints in the official format: a torch .pt with {"cfg": dict, "model": state dict}."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from upstream_merged.models.beats import BEATs, BEATsConfig
from upstream_merged.core.rng import isolated_rng
from upstream_merged.tiny import randomize_, tiny_writer

# The released iter3 cfg's options (DeepNorm, gated relative position, 320 buckets / 800 distance,
# layer-wise gradient decay 0.6) at CPU-test size. embed_dim != encoder_embed_dim keeps post_extract_proj.
TINY_BEATS = dict(
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    embed_dim=24,
    input_patch_size=16,
    conv_pos=16,
    conv_pos_groups=4,
    activation_fn="gelu",
    dropout=0.0,
    attention_dropout=0.0,
    activation_dropout=0.0,
    encoder_layerdrop=0.0,
    dropout_input=0.0,
    layer_norm_first=False,
    deep_norm=True,
    conv_bias=False,
    relative_position_embedding=True,
    num_buckets=320,
    max_distance=800,
    gru_rel_pos=True,
    layer_wise_gradient_decay_ratio=0.6,
    finetuned_model=False,
    predictor_dropout=0.0,
    predictor_class=527,
)


def tiny_beats_config(**overrides) -> dict:
    """A complete official-format BEATs cfg dict small enough for CPU tests."""
    return BEATsConfig.from_dict({**TINY_BEATS, **overrides}).to_dict()


def build_tiny_beats(seed: int = 0, **overrides) -> BEATs:
    """A seeded, fully randomised tiny BEATs encoder in eval mode."""
    with isolated_rng(seed):  # module construction draws from torch's RNG; keep the caller's state
        return randomize_(BEATs(BEATsConfig.from_dict(tiny_beats_config(**overrides))), seed).eval()


def write_beats_checkpoint(path: Path, model_or_cfg: Union[BEATs, BEATsConfig, dict], seed: int = 0) -> Path:
    """Save a BEATs model (or a seeded random one built from a cfg) as an official-format .pt.

    With ``finetuned_model`` true a seeded random ``predictor`` head (and a label_dict) is added, as
    the released fine-tuned checkpoints carry one.
    """
    if isinstance(model_or_cfg, BEATs):
        model = model_or_cfg
    else:
        config = model_or_cfg if isinstance(model_or_cfg, BEATsConfig) else BEATsConfig.from_dict(model_or_cfg)
        with isolated_rng(seed):
            model = randomize_(BEATs(config), seed)
    config = model.config
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    blob = {"cfg": config.to_dict(), "model": state}
    if config.finetuned_model:
        generator = torch.Generator().manual_seed(seed + 1)
        dim, classes = config.encoder_embed_dim, config.predictor_class
        state["predictor.weight"] = torch.randn(classes, dim, generator=generator) / dim ** 0.5
        state["predictor.bias"] = 0.05 * torch.randn(classes, generator=generator)
        blob["label_dict"] = {i: f"/m/tiny{i}" for i in range(classes)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return path


@tiny_writer("beats")
def _tiny_beats(directory: Path, seed: int) -> None:
    write_beats_checkpoint(Path(directory) / "BEATs_tiny.pt", tiny_beats_config(), seed)
