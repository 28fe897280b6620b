"""Frozen backbones for fusion: HuBERT/MERT, WavLM and Whisper encoders behind one small interface.

The kind is read from the checkpoint's config.json (model_type), so a recipe only names sources.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import torch
from torch import nn

from upstream_merged.core.rng import count_rand_draws, isolated_rng, replay_rand_draws
from upstream_merged.fusion.memo import FrozenMemo, pad_clips
from upstream_merged.fusion.whisper import WhisperContext, WhisperEncoderUpstream
from upstream_merged.models.checkpoint import CheckpointError, read_config
from upstream_merged.models.hubert import is_mert_config, load_hubert_family
from upstream_merged.models.wavlm import load_wavlm
from upstream_merged.models.whisper import load_whisper_encoder
from upstream_merged.upstream.hubert import HubertFamilyUpstream

logger = logging.getLogger(__name__)

KINDS = ("hubert", "mert", "wavlm", "whisper")


class FrozenBackbone(nn.Module):
    """A pretrained s3prl-style upstream that never trains: no gradients, eval mode whatever .train() says."""

    def __init__(self, upstream: nn.Module, kind: str, width: int, depth: int):
        super().__init__()
        self.upstream = upstream
        self.kind, self.width, self.depth = kind, int(width), int(depth)  # depth = 1 + transformer layers
        self.upstream.requires_grad_(False)
        self.train(False)
        self.memo: Optional[FrozenMemo] = None  # set by the builder when UPSTREAM_MERGED_FROZEN_MEMO names one
        self._memo_key: Optional[str] = None
        self._rng_draws: Optional[int] = None

    def train(self, mode: bool = True) -> "FrozenBackbone":
        """Stay in eval mode (no dropout, deterministic) even when the runner trains the fusion upstream."""
        return super().train(False)

    @property
    def downsample_rate(self) -> int:
        """Samples of 16 kHz input per native output frame."""
        return int(self.upstream.get_downsample_rates("hidden_states"))

    def forward(self, wavs: List[torch.Tensor]) -> List[torch.Tensor]:
        """16 kHz wav list -> the backbone's 1 + N hidden states (B, T_m, D_m); autograd only follows grad-requiring wavs."""
        # Nothing here trains: a graph is kept only to carry a wav's own gradient (s3prl's upstream test feeds such wavs).
        follow_wavs = torch.is_grad_enabled() and any(getattr(w, "requires_grad", False) for w in wavs)
        if self.memo is not None and not follow_wavs:
            return self._memoised(wavs)
        with torch.set_grad_enabled(follow_wavs):
            return list(self.upstream(wavs)["hidden_states"])

    def memo_key(self) -> str:
        """What a memo entry depends on besides the clip: kind, wrapper, its options and the weights' digest."""
        if self._memo_key is None:
            from upstream_merged.upstream.frozen_state import digest_tensors

            options = {name: getattr(self.upstream, name) for name in ("sample_rate", "normalize", "context")
                       if hasattr(self.upstream, name)}
            configs = [m.config.to_json_string() for m in self.upstream.modules() if hasattr(m, "config")
                       and hasattr(m.config, "to_json_string")][:1]
            weights = digest_tensors(self.upstream.state_dict().items()).values
            self._memo_key = f"{self.kind}|{type(self.upstream).__name__}|{sorted(options.items())}|{configs}|{weights}"
        return self._memo_key

    @property
    def rng_draws_per_forward(self) -> int:
        """``torch.rand([])`` draws one forward takes from the global RNG (HuBERT's LayerDrop draws one per layer)."""
        if self._rng_draws is None:
            draws = count_rand_draws(lambda: self.upstream([torch.zeros(16000)]), name=f"{self.kind} backbone")
            self._rng_draws = draws or 0
        return self._rng_draws

    def _memoised(self, wavs: List[torch.Tensor]) -> List[torch.Tensor]:
        """Each clip's hidden states from the memo, or forwarded alone and stored; padded into one batch.

        The global RNG moves as one batched forward moves it, whatever the memo holds: the clips forwarded
        alone draw from an isolated state, then one forward's draws are replayed. So a run's random stream
        (the runner's samplers, the head's dropout) does not depend on how warm the memo is.
        """
        draws = self.rng_draws_per_forward
        clips = []
        with torch.no_grad(), isolated_rng():
            for wav in wavs:
                key = self.memo.clip_key(self.memo_key(), wav)
                stored = self.memo.load(key)
                if stored is None:
                    stored = torch.stack([h[0] for h in self.upstream([wav])["hidden_states"]]).cpu().numpy()
                    self.memo.store(key, stored)
                clips.append(torch.from_numpy(stored).to(wav.device))
        replay_rand_draws(draws)
        return pad_clips(clips)


def backbone_kind(config: dict, source: str) -> str:
    """hubert, mert, wavlm or whisper, from a config.json dict."""
    if is_mert_config(config):
        return "mert"
    kind = config.get("model_type")
    if kind in ("hubert", "wavlm", "whisper"):
        return kind
    raise CheckpointError(
        f"{source}: model_type {kind!r} is not a supported fusion backbone (supported: hubert, MERT, wavlm, whisper)"
    )


def load_backbone(directory: str | Path, whisper_context: WhisperContext = "clip") -> FrozenBackbone:
    """Load the checkpoint directory strictly and wrap it as a frozen backbone."""
    directory = Path(directory)
    config = read_config(directory)
    kind = backbone_kind(config, str(directory))
    if kind in ("hubert", "mert"):
        encoder = load_hubert_family(directory)
        upstream = HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize)
        width, layers = encoder.model.config.hidden_size, encoder.model.config.num_hidden_layers
    elif kind == "wavlm":
        model, normalize = load_wavlm(directory)
        # WavLMModel has HubertModel's calling convention and CNN config, so the HuBERT expert serves it.
        upstream = HubertFamilyUpstream(model, 16000, normalize)
        width, layers = model.config.hidden_size, model.config.num_hidden_layers
    else:
        loaded = load_whisper_encoder(directory)
        upstream = WhisperEncoderUpstream(loaded.encoder, loaded.frontend, context=whisper_context)
        width, layers = loaded.encoder.config.d_model, loaded.encoder.config.encoder_layers
    logger.info("fusion backbone %s from %s: width %d, %d hidden states", kind, directory, width, layers + 1)
    return FrozenBackbone(upstream, kind, width, layers + 1)
