"""The s3prl upstream contract shared by every entry: wav-list validation, dtype conversion, padding, resampling."""
from __future__ import annotations

from typing import List, Sequence

import contextlib

import torch
import torchaudio

S3PRL_SAMPLE_RATE = 16000


class UpstreamInputError(ValueError):
    """The wav list given to an upstream is not what s3prl passes (16 kHz 1-D float tensors)."""


# Integer PCM -> float in [-1, 1): divide by the full scale, as soundfile / torchaudio do when loading.
PCM_FULL_SCALE = {torch.int16: 2.0 ** 15, torch.int32: 2.0 ** 31}
UINT8_CENTRE = 128.0  # 8-bit WAV is unsigned, centred on 128


def float_wave(wav: torch.Tensor, index: int = 0) -> torch.Tensor:
    """One wav as float32 in [-1, 1]: floats cast (graph kept), integer PCM scaled, other dtypes refused by name."""
    if wav.is_floating_point():
        return wav if wav.dtype == torch.float32 else wav.to(torch.float32)
    if wav.dtype in PCM_FULL_SCALE:
        return wav.to(torch.float32) / PCM_FULL_SCALE[wav.dtype]
    if wav.dtype == torch.uint8:
        return (wav.to(torch.float32) - UINT8_CENTRE) / UINT8_CENTRE
    raise UpstreamInputError(
        f"wav {index} has dtype {wav.dtype}; an upstream takes float waveforms in [-1, 1] or integer PCM "
        f"(int16, int32, uint8). Convert it first, e.g. wav.float() / full_scale"
    )


def validate_wavs(wavs: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Check s3prl's input (a non-empty list of non-empty 1-D tensors) and return the wavs as float32."""
    if not isinstance(wavs, (list, tuple)) or len(wavs) == 0:
        raise UpstreamInputError("upstream got an empty wav list; s3prl passes a list of 1-D 16 kHz tensors")
    checked = []
    for index, wav in enumerate(wavs):
        if not torch.is_tensor(wav) or wav.dim() != 1:
            shape = tuple(wav.shape) if torch.is_tensor(wav) else type(wav).__name__
            raise UpstreamInputError(f"wav {index} must be a 1-D tensor of 16 kHz samples, got {shape}")
        if wav.numel() == 0:
            raise UpstreamInputError(f"wav {index} is empty")
        checked.append(float_wave(wav, index))
    return checked


def pad_batch(wavs: Sequence[torch.Tensor], min_length: int = 0) -> tuple[torch.Tensor, List[int]]:
    """Zero-pad 1-D wavs into (B, T) with T >= min_length; also return the true lengths, a list on the host.

    The lengths never become a device tensor: building one from a Python list is a blocking host-to-device
    copy on every forward.
    """
    lengths = [len(w) for w in wavs]
    batch = wavs[0].new_zeros(len(wavs), max(max(lengths), min_length))
    for row, wav in enumerate(wavs):
        batch[row, : len(wav)] = wav
    return batch, lengths


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """A block computed in float32 even inside autocast (s3prl's --fp16 / torch.autocast) on ``device``.

    Audio frontends (power spectra, filterbanks, logs) overflow or lose their dynamic range in fp16.
    """
    kind = torch.device(device).type
    if kind in ("cuda", "cpu", "xpu", "mps"):
        return torch.autocast(device_type=kind, enabled=False)
    return contextlib.nullcontext()


def to_native_rate(wave: torch.Tensor, rate: int, native_rate: int) -> torch.Tensor:
    """Resample one wave from ``rate`` to a model's ``native_rate`` with torchaudio (identity when equal)."""
    return wave if rate == native_rate else torchaudio.functional.resample(wave, rate, native_rate)
