"""BEATs (Chen et al., 2022) audio encoder, with module names that mirror the official checkpoint keys.

The official release (microsoft/unilm, ``beats/``) ships a torch ``.pt`` holding ``{"cfg": dict,
"model": state_dict}``. ``BEATs`` here has exactly that state dict (``BEATs().state_dict().keys()`` ==
the official ``model`` keys, including ``encoder.pos_conv.0.weight_g``/``weight_v`` and one
``relative_attention_bias`` entry per layer — the official model ties one embedding into every layer,
and ``state_dict()`` lists a tied module under each of its names). Fine-tuned checkpoints add a
``predictor`` head; it is dropped on load (logged): s3prl uses the encoder only.
(``upstream_merged.mam.task_models.load_beats_classifier`` loads it WITH the head, strictly.)

Architecture: Kaldi fbank (128 mel, 25 ms / 10 ms) -> Conv2d patches 16x16 -> LayerNorm ->
Linear -> conv positional embedding (weight norm) -> post-LN transformer with DeepNorm residual
scaling, a T5-style bucketed relative position bias computed once from layer 0's table and shared,
and WavLM-style gated relative position (``grep_linear`` / ``grep_a``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from upstream_merged.models.checkpoint import (
    CheckpointError,
    PickleRequiredError,
    load_strict,
    torch_load_weights_only,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128
FRAME_LENGTH_MS = 25
FRAME_SHIFT_MS = 10
FRAME_LENGTH_SAMPLES = SAMPLE_RATE * FRAME_LENGTH_MS // 1000  # 400
FRAME_SHIFT_SAMPLES = SAMPLE_RATE * FRAME_SHIFT_MS // 1000  # 160
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582

# cfg keys of ESPnet/OpenBEATs checkpoints that configure pre-training only (masking, the MAE-style
# decoder, flash attention); they do not change the encoder's function, so they are accepted and ignored.
NO_OP_CFG_KEYS = frozenset({
    "decoder_embed_dim", "decoder_pos_trainable", "decoder_attention_heads", "decoder_mlp_ratio",
    "decoder_layers", "codebook_vocab_size", "mask_ratio", "use_flash_attn",
})
PREDICTOR_KEYS = ("predictor.weight", "predictor.bias")
ACTIVATIONS = ("gelu", "gelu_accurate", "gelu_fast", "relu", "tanh", "linear")
_REL_BIAS = "encoder.layers.{}.self_attn.relative_attention_bias.weight"
_POS_CONV = "encoder.pos_conv.0."


class BEATsConfigError(CheckpointError):
    """A BEATs cfg dict has unknown keys or values this implementation does not support."""


@dataclass(frozen=True)
class BEATsConfig:
    """The official BEATsConfig fields (same names, same defaults except input_patch_size=16)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0  # accepted, never applied (s3prl needs a fixed layer count)
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527

    @classmethod
    def from_dict(cls, cfg: dict, source: str = "BEATs cfg") -> "BEATsConfig":
        """Build from the official ``cfg`` dict; unknown keys are an error naming them."""
        if not isinstance(cfg, dict):
            raise BEATsConfigError(f"{source}: cfg must be a dict, got {type(cfg).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known - NO_OP_CFG_KEYS)
        if unknown:
            raise BEATsConfigError(
                f"{source}: unknown BEATs cfg key(s) {unknown}; known keys are the official BEATsConfig fields "
                f"{sorted(known)} (ignored pre-training-only keys: {sorted(NO_OP_CFG_KEYS)})"
            )
        config = cls(**{k: v for k, v in cfg.items() if k in known})
        config.validate(source)
        return config

    def to_dict(self) -> dict:
        """The official-format cfg dict."""
        return asdict(self)

    def validate(self, source: str = "BEATs cfg") -> None:
        """Raise BEATsConfigError naming the first unsupported or inconsistent value."""
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise BEATsConfigError(f"{source}: encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                                   f"encoder_attention_heads {self.encoder_attention_heads}")
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise BEATsConfigError(f"{source}: encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                                   f"conv_pos_groups {self.conv_pos_groups}")
        if self.activation_fn not in ACTIVATIONS:
            raise BEATsConfigError(f"{source}: activation_fn {self.activation_fn!r} is not supported "
                                   f"(supported: {', '.join(ACTIVATIONS)})")
        if self.deep_norm and self.layer_norm_first:
            raise BEATsConfigError(f"{source}: deep_norm and layer_norm_first cannot both be true (as in the official code)")
        if not 0 < self.input_patch_size <= NUM_MEL_BINS:
            raise BEATsConfigError(f"{source}: input_patch_size {self.input_patch_size} must be in 1..{NUM_MEL_BINS}")
        if self.relative_position_embedding and self.num_buckets < 4:
            raise BEATsConfigError(f"{source}: num_buckets {self.num_buckets} is too small for the bidirectional buckets")

    @property
    def freq_patches(self) -> int:
        """Number of frequency patches per time patch (128 mel bins / patch size = 8 for BEATs)."""
        return NUM_MEL_BINS // self.input_patch_size

    @property
    def head_dim(self) -> int:
        """Per-head width of q, k and v."""
        return self.encoder_embed_dim // self.encoder_attention_heads


def beats_layer_names(config: BEATsConfig) -> List[str]:
    """State-dict prefix of every transformer layer, in depth order (``encoder.layers.{i}``)."""
    return [f"encoder.layers.{i}" for i in range(config.encoder_layers)]


def beats_fbank(wav: torch.Tensor) -> torch.Tensor:
    """Normalised Kaldi fbank (frames, 128) of one 16 kHz wav in [-1, 1], as the official preprocess."""
    if wav.dim() != 1:
        raise ValueError(f"beats_fbank expects a 1-D wav, got shape {tuple(wav.shape)}")
    from upstream_merged.upstream.base import full_precision

    wav = wav.float()  # the power spectrum of int16-scaled audio overflows fp16: always float32, even under autocast
    if wav.numel() < FRAME_LENGTH_SAMPLES:  # Kaldi framing needs one full 25 ms window
        wav = F.pad(wav, (0, FRAME_LENGTH_SAMPLES - wav.numel()))
    with full_precision(wav.device):
        fbank = torchaudio.compliance.kaldi.fbank(
            wav.unsqueeze(0) * 2 ** 15, num_mel_bins=NUM_MEL_BINS, sample_frequency=SAMPLE_RATE,
            frame_length=FRAME_LENGTH_MS, frame_shift=FRAME_SHIFT_MS,
        )  # (frames, 128); dither 0 -> deterministic
        return (fbank - FBANK_MEAN) / (2 * FBANK_STD)


def fbank_frames(num_samples: int) -> int:
    """Frames ``beats_fbank`` returns for ``num_samples`` samples (Kaldi snip_edges framing)."""
    return (max(num_samples, FRAME_LENGTH_SAMPLES) - FRAME_LENGTH_SAMPLES) // FRAME_SHIFT_SAMPLES + 1


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device=None) -> torch.Tensor:
    """T5-style bidirectional bucket index (length, length) of key position minus query position."""
    positions = torch.arange(length, device=device)
    relative = positions[None, :] - positions[:, None]  # (T_query, T_key)
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    max_exact = half // 2
    # log-spaced buckets beyond max_exact; clamp keeps log() finite where the exact branch is taken
    far = max_exact + (
        torch.log(distance.clamp(min=1).float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
    ).long()
    far = far.clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, far)


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name in ("gelu_accurate", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    return lambda x: x


class _ScaleGrad(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward (official layer-wise gradient decay)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad * ctx.scale, None


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d with torch's legacy weight norm over dim 2: parameters ``weight_g``, ``weight_v``, ``bias``."""

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        self.kernel_size, self.groups = kernel_size, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel_size) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    @property
    def weight(self) -> torch.Tensor:
        """The effective kernel g * v / ||v|| (norm over every dim but the tap axis)."""
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T) -> (B, D, T + 1 - K % 2)
        return F.conv1d(x, self.weight, self.bias, padding=self.kernel_size // 2, groups=self.groups)


class _SamePad(nn.Module):
    """Drop the extra trailing frame an even kernel with padding K // 2 produces."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.trim = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :-self.trim] if self.trim else x


class BEATsAttention(nn.Module):
    """Multi-head self-attention with the (gated) relative position bias; names as the official ``self_attn``."""

    def __init__(self, config: BEATsConfig, has_relative_attention_bias: bool):
        super().__init__()
        dim, heads = config.encoder_embed_dim, config.encoder_attention_heads
        self.num_heads, self.head_dim = heads, config.head_dim
        self.dropout = config.attention_dropout
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        # Layer 0 owns the table; BEATsEncoder ties it into the other layers, as the official model does.
        self.relative_attention_bias = nn.Embedding(config.num_buckets, heads) if has_relative_attention_bias else None
        self.gru_rel_pos = config.gru_rel_pos
        if self.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, H, T, d)
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, position_bias: Optional[torch.Tensor] = None,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, T, D); position_bias (H, T, T); key_padding_mask (B, T) True at padding -> (B, T, D)."""
        batch, length, dim = x.shape
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        bias = None
        if position_bias is not None:
            bias = position_bias.unsqueeze(0)  # (1, H, T, T)
            if self.gru_rel_pos:
                # Gate per query from the unscaled query: two sigmoid gates from 2 x 4 summed projections.
                gates = torch.sigmoid(self.grep_linear(q).view(batch, self.num_heads, length, 2, 4).sum(-1))
                gate_a, gate_b = gates[..., :1], gates[..., 1:]  # (B, H, T, 1) each
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias  # (B, H, T, T)
        if key_padding_mask is not None:
            masked = torch.zeros(batch, 1, 1, length, dtype=q.dtype, device=q.device)
            masked = masked.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
            bias = masked if bias is None else bias + masked
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0,
        )  # (B, H, T, d); scale 1/sqrt(d) as the official q scaling
        return self.out_proj(context.transpose(1, 2).reshape(batch, length, dim))


class BEATsLayer(nn.Module):
    """One transformer layer (post-LN with DeepNorm residual scaling, or pre-LN)."""

    def __init__(self, config: BEATsConfig, has_relative_attention_bias: bool):
        super().__init__()
        dim = config.encoder_embed_dim
        self.self_attn = BEATsAttention(config, has_relative_attention_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _activation(config.activation_fn)
        self.dropout = nn.Dropout(config.dropout)
        self.activation_dropout = nn.Dropout(config.activation_dropout)
        self.layer_norm_first = config.layer_norm_first
        self.residual_scale = (2 * config.encoder_layers) ** 0.25 if config.deep_norm else 1.0

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(self.activation(self.fc1(x)))))

    def forward(self, x: torch.Tensor, position_bias: Optional[torch.Tensor],
                key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        if self.layer_norm_first:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), position_bias, key_padding_mask))
            return x + self._ffn(self.final_layer_norm(x))
        x = self.residual_scale * x + self.dropout(self.self_attn(x, position_bias, key_padding_mask))
        x = self.self_attn_layer_norm(x)
        x = self.residual_scale * x + self._ffn(x)
        return self.final_layer_norm(x)


class BEATsEncoder(nn.Module):
    """Conv positional embedding + transformer layers; returns every hidden state (input + each layer)."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        dim = config.encoder_embed_dim
        self.config = config
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, config.conv_pos, config.conv_pos_groups), _SamePad(config.conv_pos), nn.GELU()
        )
        self.layers = nn.ModuleList(
            BEATsLayer(config, has_relative_attention_bias=config.relative_position_embedding and i == 0)
            for i in range(config.encoder_layers)
        )
        if config.relative_position_embedding:
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared  # one table, listed under every layer
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(config.dropout)

    def position_bias(self, length: int, device) -> Optional[torch.Tensor]:
        """Relative position bias (H, T, T) from layer 0's bucket table, or None when disabled."""
        table = self.layers[0].self_attn.relative_attention_bias
        if table is None:
            return None
        buckets = relative_position_buckets(length, self.config.num_buckets, self.config.max_distance, device)
        return table(buckets).permute(2, 0, 1)  # (H, T, T)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """x (B, T, D) -> (hidden_states [input after pos-conv (+LN), each layer output], final output)."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.config.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.position_bias(x.shape[1], x.device)
        decay = self.config.layer_wise_gradient_decay_ratio
        hidden_states = [x]
        for layer in self.layers:
            if decay != 1.0 and torch.is_grad_enabled():
                x = _ScaleGrad.apply(x, decay)
            x = layer(x, bias, padding_mask)
            hidden_states.append(x)
        final = self.layer_norm(x) if self.config.layer_norm_first else x
        return hidden_states, final


@dataclass
class BEATsOutput:
    """Token-level encoder output: tokens are time-major (index = time_patch * freq_patches + freq_patch)."""

    hidden_states: List[torch.Tensor]  # 1 + N tensors (B, time_patches * freq_patches, D)
    last_hidden_state: torch.Tensor  # (B, tokens, D); encoder.layer_norm applied for pre-LN configs
    padding_mask: Optional[torch.Tensor]  # (B, tokens) True at padding, None when nothing is padded
    time_patches: torch.Tensor  # (B,) valid time patches per utterance
    freq_patches: int


class BEATs(nn.Module):
    """The BEATs encoder; ``state_dict()`` keys equal the official checkpoint's ``model`` keys (no predictor)."""

    def __init__(self, config: BEATsConfig):
        super().__init__()
        if config.encoder_layerdrop:
            logger.info("BEATs: encoder_layerdrop=%s is not applied (s3prl needs every layer every step)",
                        config.encoder_layerdrop)
        self.config = config
        patch = config.input_patch_size
        self.post_extract_proj = (
            nn.Linear(config.embed_dim, config.encoder_embed_dim) if config.embed_dim != config.encoder_embed_dim else None
        )
        self.patch_embedding = nn.Conv2d(1, config.embed_dim, kernel_size=patch, stride=patch, bias=config.conv_bias)
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.encoder = BEATsEncoder(config)
        self.layer_norm = nn.LayerNorm(config.embed_dim)

    def forward(self, fbank: torch.Tensor, frame_lengths: Optional[Union[torch.Tensor, Sequence[int]]] = None) -> BEATsOutput:
        """fbank (B, frames, 128) normalised as ``beats_fbank``; frame_lengths (B,) true frames per row.

        Give ``frame_lengths`` as a list of ints (known on the host) to avoid a device sync per forward;
        a tensor works too, at the cost of one sync to decide whether a padding mask is needed.

        Rows shorter than one patch (16 frames) are zero-padded to one patch, so every input yields
        at least one time patch. Trailing frames that do not fill a patch are dropped (as the official
        stride-16 convolution does).
        """
        patch = self.config.input_patch_size
        batch, frames, bins = fbank.shape
        if bins != NUM_MEL_BINS:
            raise ValueError(f"BEATs expects {NUM_MEL_BINS} mel bins, got fbank of shape {tuple(fbank.shape)}")
        if frames < patch:
            fbank = F.pad(fbank, (0, 0, 0, patch - frames))
        if frame_lengths is None:
            frame_lengths = [frames] * batch
        features = self.patch_embedding(fbank.unsqueeze(1))  # (B, E, T_p, F_p)
        time_total, freq = features.shape[2], features.shape[3]
        features = features.flatten(2).transpose(1, 2)  # (B, T_p * F_p, E), time-major
        if torch.is_tensor(frame_lengths):
            time_valid = (frame_lengths.to(fbank.device) // patch).clamp(min=1, max=time_total)
            padded = bool((time_valid < time_total).any())  # one device sync
        else:
            valid = [min(max(int(n) // patch, 1), time_total) for n in frame_lengths]
            time_valid = torch.tensor(valid, dtype=torch.long, device=fbank.device)
            padded = any(v < time_total for v in valid)
        padding_mask = None
        if padded:
            pad_time = torch.arange(time_total, device=fbank.device)[None, :] >= time_valid[:, None]  # (B, T_p)
            padding_mask = pad_time.repeat_interleave(freq, dim=1)  # (B, T_p * F_p)
        features = self.layer_norm(features)
        if self.post_extract_proj is not None:
            features = self.post_extract_proj(features)  # (B, tokens, D)
        hidden_states, final = self.encoder(self.dropout_input(features), padding_mask)
        return BEATsOutput(hidden_states, final, padding_mask, time_valid, freq)


# ---------------------------------------------------------------------------------------------------
# Official-format checkpoints
# ---------------------------------------------------------------------------------------------------

def find_beats_file(path: Path) -> Path:
    """The .pt file ``path`` names, or the single .pt inside directory ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(path.glob("*.pt"))
        if len(candidates) == 1:
            return candidates[0]
        found = ", ".join(p.name for p in candidates) or "none"
        raise CheckpointError(f"{path}: expected exactly one BEATs .pt file in the directory, found {found}; pass the file itself")
    raise CheckpointError(f"BEATs checkpoint not found: {path}")


CONVERT_COMMAND = "python -m upstream_merged.models.beats_convert {path} {out}"


def pickle_help(path: Path) -> str:
    """How to turn a BEATs .pt that needs full unpickling into a weights-only one (or opt in explicitly)."""
    out = Path(path).with_name(Path(path).stem + "_weights_only.pt")
    return (
        f"If you trust the file, convert it once with `{CONVERT_COMMAND.format(path=path, out=out)}` (it unpickles "
        f"the file and re-saves cfg as a plain dict), or in Python:\n"
        f"    blob = torch.load('{path}', weights_only=False)\n"
        f"    cfg = blob['cfg'] if isinstance(blob['cfg'], dict) else vars(blob['cfg'])\n"
        f"    torch.save({{'cfg': dict(cfg), 'model': blob['model']}}, '{out}')\n"
        f"and pass the new file; a MAM recipe can instead load it as it is with `allow_pickle: true`"
    )


def _plain_cfg(cfg, path: Path) -> dict:
    """A cfg stored as a dict or as an object with attributes (e.g. the official BEATsConfig) as a dict."""
    if isinstance(cfg, dict):
        return dict(cfg)
    if hasattr(cfg, "__dict__"):
        return dict(vars(cfg))
    raise CheckpointError(f"{path}: 'cfg' must be a dict or an object with attributes, got {type(cfg).__name__}")


def read_beats_checkpoint(path: Path, allow_pickle: bool = False) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """(cfg dict, model state dict) of an official BEATs .pt (``{"cfg": ..., "model": ...}``).

    The file is read weights-only. One that needs full unpickling (Python objects besides tensors
    and plain containers) is refused with the conversion recipe, unless ``allow_pickle`` is true.
    """
    path = find_beats_file(path)
    try:
        blob = torch_load_weights_only(path, allow_pickle=allow_pickle)
    except PickleRequiredError as err:
        raise PickleRequiredError(f"{err}. {pickle_help(path)}") from None
    if allow_pickle:
        logger.warning("%s: loaded with full unpickling (allow_pickle: true)", path)
    if not isinstance(blob, dict) or "cfg" not in blob or "model" not in blob:
        keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{path}: not an official BEATs checkpoint (expected a dict with 'cfg' and 'model', got {keys})")
    extra = sorted(set(blob) - {"cfg", "model", "label_dict"})
    if extra:
        logger.warning("%s: ignoring top-level entries %s (BEATs uses 'cfg' and 'model')", path, extra)
    cfg, state = blob["cfg"], blob["model"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: 'model' must be a state dict, got {type(state).__name__}")
    return _plain_cfg(cfg, path), dict(state)


def _pos_conv_keys(state: Dict[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
    """Accept the three weight-norm spellings of the positional conv and return weight_g/weight_v."""
    out = dict(state)
    new_g, new_v = _POS_CONV + "parametrizations.weight.original0", _POS_CONV + "parametrizations.weight.original1"
    if new_g in out or new_v in out:  # torch.nn.utils.parametrizations.weight_norm names
        if new_g not in out or new_v not in out:
            raise CheckpointError(f"{source}: {new_g} and {new_v} must come together")
        out[_POS_CONV + "weight_g"], out[_POS_CONV + "weight_v"] = out.pop(new_g), out.pop(new_v)
    plain = _POS_CONV + "weight"
    if plain in out:  # weight norm removed: any (g, v) with g * v / ||v|| == weight reproduces it exactly
        weight = out.pop(plain)
        out[_POS_CONV + "weight_g"] = weight.norm(dim=(0, 1), keepdim=True)
        out[_POS_CONV + "weight_v"] = weight
    return out


def _shared_bias_keys(state: Dict[str, torch.Tensor], config: BEATsConfig, source: str) -> Dict[str, torch.Tensor]:
    """Fill the tied per-layer relative-bias entries from layer 0; differing copies are an error."""
    if not config.relative_position_embedding or _REL_BIAS.format(0) not in state:
        return state
    out = dict(state)
    table = out[_REL_BIAS.format(0)]
    for i in range(1, config.encoder_layers):
        key = _REL_BIAS.format(i)
        if key not in out:
            out[key] = table
        elif out[key].shape != table.shape or not torch.equal(out[key], table):
            raise CheckpointError(
                f"{source}: {key} differs from {_REL_BIAS.format(0)}; BEATs shares one relative position "
                f"bias table across layers (write the same tensor for every layer, or layer 0 only)"
            )
    return out


def beats_encoder_state(state: Dict[str, torch.Tensor], config: BEATsConfig, source: str) -> Dict[str, torch.Tensor]:
    """Normalise an official ``model`` state dict to ``BEATs(config)``'s keys (drops a fine-tuned head)."""
    state = _pos_conv_keys(state, source)
    head = sorted(k for k in state if k.startswith("predictor."))
    if head:
        if not config.finetuned_model:
            raise CheckpointError(f"{source}: predictor keys {head} present but cfg finetuned_model is false")
        unexpected = sorted(set(head) - set(PREDICTOR_KEYS))
        if unexpected:
            raise CheckpointError(f"{source}: unknown predictor keys {unexpected} (expected {list(PREDICTOR_KEYS)})")
        weight = state.get("predictor.weight")
        if weight is not None and tuple(weight.shape) != (config.predictor_class, config.encoder_embed_dim):
            raise CheckpointError(f"{source}: predictor.weight shape {tuple(weight.shape)} does not match cfg "
                                  f"({config.predictor_class}, {config.encoder_embed_dim})")
        logger.info("%s: dropping the fine-tuned %d-class predictor head (s3prl uses the encoder only)",
                    source, config.predictor_class)
        state = {k: v for k, v in state.items() if not k.startswith("predictor.")}
    return _shared_bias_keys(state, config, source)


def load_beats_state(model: BEATs, state: Dict[str, torch.Tensor], source: str) -> BEATs:
    """Load an official-format state dict into ``model`` strictly (every key accounted for)."""
    load_strict(model, beats_encoder_state(state, model.config, source), source)
    return model


def load_beats(path: Path, allow_pickle: bool = False) -> BEATs:
    """A BEATs encoder in eval mode from an official .pt (or a directory holding exactly one), read weights-only.

    ``allow_pickle=True`` also accepts files that need full unpickling (only for files you trust).
    """
    file = find_beats_file(Path(path))
    cfg, state = read_beats_checkpoint(file, allow_pickle=allow_pickle)
    config = BEATsConfig.from_dict(cfg, source=str(file))
    model = BEATs(config)
    return load_beats_state(model, state, str(file)).eval()
