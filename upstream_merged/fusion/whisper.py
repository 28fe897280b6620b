"""Whisper encoder as an s3prl-style upstream: a torch log-mel frontend that does not pad to 30 s.

``WhisperFeatureExtractor`` pads every clip to 30 s (3000 mel frames) and the HF encoder insists
on that length. Here the mel frames are computed only as far as the clip needs and the encoder's
stem, positional embedding and layers are run on that many frames. The mel frames are identical
to the reference's (the clip is zero-padded just far enough that every kept STFT window sees what
it sees in the 30 s padded signal); the transformer outputs differ from the sliced 30 s reference
only because attention no longer sees the padding frames (context="padded" restores the reference).
"""
from __future__ import annotations

import math
from typing import Dict, List, Literal

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from upstream_merged.models.whisper import WhisperFrontendConfig
from upstream_merged.upstream.base import S3PRL_SAMPLE_RATE, full_precision, pad_batch, validate_wavs

WhisperContext = Literal["clip", "padded"]
LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # log10 units kept below each clip's maximum


class WhisperLogMel(nn.Module):
    """Whisper's log-mel spectrogram in torch (matches WhisperFeatureExtractor frame by frame)."""

    def __init__(self, config: WhisperFrontendConfig):
        super().__init__()
        self.config = config
        filters = torchaudio.functional.melscale_fbanks(
            n_freqs=config.n_fft // 2 + 1, f_min=0.0, f_max=8000.0, n_mels=config.num_mel_bins,
            sample_rate=config.sampling_rate, norm="slaney", mel_scale="slaney",
        )  # (F, M)
        self.register_buffer("filters", filters.T.contiguous(), persistent=False)  # (M, F)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)

    @property
    def chunk_frames(self) -> int:
        """Mel frames of one reference window (3000 for 30 s)."""
        return self.config.chunk_length * self.config.sampling_rate // self.config.hop_length

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """(B, N) samples -> (B, mels, num_frames) float32 (even under autocast): frames 0..num_frames-1 of the zero-padded clip."""
        with full_precision(audio.device):
            return self._log_mel(audio.float(), num_frames)

    def _log_mel(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        hop, half = self.config.hop_length, self.config.n_fft // 2
        samples = audio.shape[1]
        # Every frame whose window reaches the clip takes part in the per-clip maximum, as in the reference.
        touching = -(-(samples + half) // hop)
        if samples <= self.chunk_frames * hop:
            touching = min(touching, self.chunk_frames)
        total = max(num_frames, touching)
        # Zero-pad so that no kept window reaches the reflected end: they then see the reference's zeros.
        padded = F.pad(audio, (0, max(0, (total - 1) * hop + half + 1 - samples)))
        spec = torch.stft(padded, self.config.n_fft, hop, window=self.window.float(), center=True, pad_mode="reflect",
                          return_complex=True)[..., :total]  # (B, F, total)
        mel = self.filters.float() @ spec.abs().pow(2)  # (B, M, total)
        log_spec = mel.clamp(min=LOG_FLOOR).log10()
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - DYNAMIC_RANGE)
        return ((log_spec + 4.0) / 4.0)[..., :num_frames]


class WhisperEncoderUpstream(nn.Module):
    """s3prl upstream for a Whisper encoder: 16 kHz wav list in, 1 + N hidden states at 320 samples/frame.

    context="clip" encodes only the frames the batch needs (clips longer than one 30 s window are
    encoded window by window); context="padded" reproduces WhisperFeatureExtractor + the full
    encoder, sliced to the clip.
    """

    def __init__(self, encoder: WhisperEncoder, frontend: WhisperFrontendConfig, context: WhisperContext = "clip"):
        super().__init__()
        if frontend.sampling_rate != S3PRL_SAMPLE_RATE:
            raise ValueError(f"Whisper frontend sampling_rate={frontend.sampling_rate}; only 16000 is supported")
        if context not in ("clip", "padded"):
            raise ValueError(f"whisper context must be 'clip' or 'padded', got {context!r}")
        self.encoder = encoder
        self.frontend = WhisperLogMel(frontend)
        self.context = context
        self._stride = encoder.conv1.stride[0] * encoder.conv2.stride[0]

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Samples of 16 kHz input per output frame (hop 160 x conv stride 2 = 320)."""
        return self.frontend.config.hop_length * self._stride

    def output_frames(self, samples: int) -> int:
        """Encoder frames produced for a clip of ``samples`` samples (before any slicing)."""
        return max(1, -(-samples // self.get_downsample_rates()))

    def stem(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mels, M) -> (B, M / stride, D): the two GELU convs, before positions are added."""
        x = F.gelu(self.encoder.conv1(mel.to(self.encoder.conv1.weight.dtype)))
        return F.gelu(self.encoder.conv2(x)).transpose(1, 2)

    def encode_window(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Stem output of at most one window (B, T, D) -> 1 + N hidden states, as HF's encoder computes them."""
        encoder = self.encoder
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        states = []
        for layer in encoder.layers:
            states.append(x)
            out = layer(x, None, layer_head_mask=None)
            x = out[0] if isinstance(out, tuple) else out
        states.append(encoder.layer_norm(x))
        return states

    def forward(self, wavs: List[torch.Tensor]) -> Dict[str, object]:
        wavs = validate_wavs(wavs)
        batch, _ = pad_batch(wavs)
        frames = self.output_frames(batch.shape[1])
        window = self.encoder.config.max_source_positions
        if self.context == "padded":  # whole 30 s windows, each through its own stem, as the reference
            stem_frames = math.ceil(frames / window) * window
            mel = self.frontend(batch, stem_frames * self._stride)
            step = window * self._stride
            x = torch.cat([self.stem(mel[..., s:s + step]) for s in range(0, mel.shape[-1], step)], dim=1)
        else:
            stem_frames = frames
            # One extra stem frame of mel: the last kept frame's convs then see the (zero-signal) mel
            # frames on their right, as in the padded reference, instead of the conv's zero padding.
            mel = self.frontend(batch, (stem_frames + 1) * self._stride)
            x = self.stem(mel)[:, :stem_frames]  # (B, stem_frames, D)
        pieces = [self.encode_window(x[:, start:start + window]) for start in range(0, stem_frames, window)]
        hidden_states = [torch.cat(layer, dim=1)[:, :frames] for layer in zip(*pieces)]
        return {"hidden_states": hidden_states, "last_hidden_state": hidden_states[-1]}
