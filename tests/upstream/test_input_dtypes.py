"""Integer PCM wavs are converted with the right scale in the shared input path; other dtypes are refused by name."""
import pytest
import torch

from upstream_merged.registry import entries
from upstream_merged.upstream.base import UpstreamInputError, float_wave, validate_wavs

GEN = torch.Generator().manual_seed(0)
# One entry per input path: HuBERT, MERT-v1 (24 kHz, normalised), BEATs (fbank), fusion with Whisper, L-MAM.
FAMILIES = ["hubert_tiny", "mert_v1_tiny", "beats_tiny", "fusion_hubert_whisper_hconv_tiny", "lmam_hubert_bert_tiny"]


def test_integer_pcm_scales():
    pcm16 = torch.tensor([-32768, -16384, 0, 16384, 32767], dtype=torch.int16)
    assert torch.equal(float_wave(pcm16), torch.tensor([-1.0, -0.5, 0.0, 0.5, 32767 / 32768]))
    pcm32 = torch.tensor([-2 ** 31, 0, 2 ** 30], dtype=torch.int32)
    assert torch.equal(float_wave(pcm32), torch.tensor([-1.0, 0.0, 0.5]))
    pcm8 = torch.tensor([0, 64, 128, 255], dtype=torch.uint8)  # 8-bit WAV is unsigned, centred on 128
    assert torch.equal(float_wave(pcm8), torch.tensor([-1.0, -0.5, 0.0, 127 / 128]))
    assert all(float_wave(w).dtype == torch.float32 for w in (pcm16, pcm32, pcm8))


def test_floats_become_float32_and_keep_their_graph():
    wav = torch.randn(100, generator=GEN, dtype=torch.float64, requires_grad=True)
    converted = float_wave(wav)
    assert converted.dtype == torch.float32 and converted.requires_grad
    same = torch.randn(100, generator=GEN)
    assert float_wave(same) is same


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool, torch.complex64])
def test_other_dtypes_are_refused_by_name(dtype):
    wav = torch.zeros(400, dtype=dtype)
    with pytest.raises(UpstreamInputError, match=rf"wav 1 has dtype {dtype}"):
        validate_wavs([torch.zeros(400), wav])


@pytest.mark.parametrize("name", FAMILIES)
def test_int16_wav_gives_the_hidden_states_of_its_float_scale(name):
    upstream = entries()[name]().eval()
    pcm = [(torch.rand(n, generator=GEN) * 2 - 1).mul(20000).to(torch.int16) for n in (4000, 3200)]
    with torch.no_grad():
        from_pcm = upstream(pcm)["hidden_states"]
        from_float = upstream([w.float() / 32768 for w in pcm])["hidden_states"]
    assert len(from_pcm) == len(from_float)
    assert all(torch.equal(a, b) for a, b in zip(from_pcm, from_float))
