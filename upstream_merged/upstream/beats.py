"""s3prl upstream expert for BEATs: 16 kHz wav list in, 1 + N per-time-patch hidden states out.

BEATs tokens are 16x16 patches of a (frames x 128 mel) fbank, time-major: 8 frequency patches per
160 ms time patch. s3prl needs one vector per time step, so the 8 frequency tokens of each time
patch are averaged (no new parameters, width stays D, and the official classifier also averages
tokens). One output frame = 16 fbank frames x 10 ms = 2560 samples at 16 kHz.
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from upstream_merged.models.beats import BEATs, beats_fbank
from upstream_merged.upstream.base import validate_wavs


def pool_frequency(tokens: torch.Tensor, freq_patches: int) -> torch.Tensor:
    """(B, T_p * F_p, D) time-major tokens -> (B, T_p, D) by averaging the F_p frequency tokens."""
    batch, count, dim = tokens.shape
    return tokens.view(batch, count // freq_patches, freq_patches, dim).mean(dim=2)


class BEATsUpstream(nn.Module):
    """Wraps a ``BEATs`` encoder for s3prl (per-utterance fbank, padding mask, frequency pooling)."""

    def __init__(self, model: BEATs):
        super().__init__()
        self.model = model
        self._patch = model.config.input_patch_size

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Samples of 16 kHz input per output frame: 16 fbank frames x 160 samples = 2560."""
        return self._patch * 160

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        wavs = validate_wavs(wavs)
        # fbank of each utterance over its true length (padding never enters the spectrogram)
        fbanks = [beats_fbank(w) for w in wavs]  # (frames_i, 128), float32 even under autocast
        lengths = [f.shape[0] for f in fbanks]  # on the host: no device sync per forward
        total = max(max(lengths), self._patch)
        batch = torch.stack([F.pad(f, (0, 0, 0, total - f.shape[0])) for f in fbanks])  # (B, frames, 128)
        batch = batch.to(self.model.patch_embedding.weight.dtype)
        output = self.model(batch, frame_lengths=lengths)
        hidden_states = [pool_frequency(h, output.freq_patches) for h in output.hidden_states]  # (B, T_p, D)
        return {
            "hidden_states": hidden_states,
            "last_hidden_state": pool_frequency(output.last_hidden_state, output.freq_patches),
        }
