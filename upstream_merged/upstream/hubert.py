"""s3prl upstream expert for HuBERT-architecture encoders (HuBERT, MERT, merged models)."""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import nn
from transformers import HubertModel

from upstream_merged.core.frames import conv_output_length, interpolate_frames, receptive_field
from upstream_merged.upstream.base import S3PRL_SAMPLE_RATE, pad_batch, to_native_rate, validate_wavs


def hubert_model_input(waves: List[torch.Tensor], normalize: bool, min_length: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Pad native-rate waves into (B, T) with the padding mask, normalising each clip as its checkpoint expects."""
    if normalize:  # as Wav2Vec2FeatureExtractor(do_normalize=True), over the true length
        waves = [(w - w.mean()) / torch.sqrt(w.var(unbiased=False) + 1e-7) for w in waves]
    batch, lengths = pad_batch(waves, min_length=min_length)
    # The padding mask (as s3prl's fairseq and HF HuBERT experts pass it) keeps padded frames out of attention;
    # filled row by row from the host lengths (no host-to-device copy of them).
    mask = torch.zeros(batch.shape, dtype=torch.long, device=batch.device)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    return batch, mask


def keep_input_graph(model: nn.Module) -> None:
    """Let wavs that carry an autograd graph (s3prl's get_pseudo_wavs) through transformers' feature encoder.

    In training, ``HubertFeatureEncoder`` sets ``requires_grad = True`` on its input so that gradient
    checkpointing of the CNN has a differentiable input; on a padded batch built from grad-requiring
    wavs (a non-leaf) that raises "you can only change requires_grad flags of leaf variables". We never
    checkpoint the CNN, so the flag is switched off: the CNN parameters still get gradients under -f,
    and a wav's own gradient flows through padding, normalisation and resampling.
    """
    encoder = getattr(model, "feature_extractor", None)
    if encoder is not None and getattr(encoder, "_requires_grad", False):
        encoder._requires_grad = False


class HubertFamilyUpstream(nn.Module):
    """Wraps a ``HubertModel`` for s3prl: 16 kHz wav list in, 1 + N hidden states out.

    A model with another native rate (MERT-v1: 24 kHz) gets resampled audio; its frames are then
    linearly interpolated onto the grid a 16 kHz model with the same CNN would produce, so the
    downsample rate stays an integer (320 for the standard CNN).
    """

    def __init__(self, model: HubertModel, sample_rate: int = S3PRL_SAMPLE_RATE, normalize: bool = False):
        super().__init__()
        self.model = model
        self.sample_rate = int(sample_rate)
        self.normalize = bool(normalize)
        config = model.config
        self._kernels, self._strides = list(config.conv_kernel), list(config.conv_stride)
        self._min_samples = receptive_field(self._kernels, self._strides)
        keep_input_graph(model)

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Samples of 16 kHz input per output frame."""
        return math.prod(self._strides)

    def _frames_at_16k(self, samples: int) -> int:
        return conv_output_length(max(samples, self._min_samples), self._kernels, self._strides)

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        wavs = validate_wavs(wavs)
        native = [to_native_rate(w, S3PRL_SAMPLE_RATE, self.sample_rate) for w in wavs]
        batch, mask = hubert_model_input(native, self.normalize, min_length=self._min_samples)
        output = self.model(batch, attention_mask=mask, output_hidden_states=True)
        hidden_states = list(output.hidden_states)
        if self.sample_rate != S3PRL_SAMPLE_RATE:
            frames = self._frames_at_16k(max(len(w) for w in wavs))
            hidden_states = [interpolate_frames(h, frames) for h in hidden_states]
        return {"hidden_states": hidden_states, "last_hidden_state": hidden_states[-1]}
