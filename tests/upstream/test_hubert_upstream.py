"""The s3prl upstream contract for HuBERT-family encoders (checked the way s3prl's own tests do)."""
import pytest
import torch

from upstream_merged.core.frames import conv_output_length
from upstream_merged.models.hubert import load_hubert_family
from upstream_merged.testing.contract import assert_deterministic_and_same_layers, pseudo_wavs
from upstream_merged.tiny.hubert import build_tiny_hubert, write_hubert_dir, write_mert_dir
from upstream_merged.upstream.base import UpstreamInputError
from upstream_merged.upstream.hubert import HubertFamilyUpstream

GEN = torch.Generator().manual_seed(0)


def _wavs(*seconds):
    return [torch.randn(int(s * 16000), generator=GEN) for s in seconds]


@pytest.fixture(params=["hubert", "mert_v1"])
def upstream(request, tmp_path):
    if request.param == "hubert":
        write_hubert_dir(tmp_path, build_tiny_hubert(seed=2))
    else:
        write_mert_dir(tmp_path, build_tiny_hubert(seed=2), version="v1")
    encoder = load_hubert_family(tmp_path)
    return HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize)


def test_all_hidden_states_with_integer_rate(upstream):
    upstream.eval()
    wavs = _wavs(1.0, 0.7)
    hidden = upstream(wavs)["hidden_states"]
    assert len(hidden) == 1 + upstream.model.config.num_hidden_layers
    rate = upstream.get_downsample_rates("hidden_states")
    assert isinstance(rate, int) and rate == 320
    assert {tuple(h.shape) for h in hidden} == {(2, hidden[0].shape[1], 32)}
    assert abs(hidden[0].shape[1] - round(16000 / rate)) <= 5


def test_deterministic_in_eval_and_same_layers_in_train(upstream):
    assert_deterministic_and_same_layers(upstream, _wavs(0.5))


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_grad_requiring_short_batches_reach_every_parameter(upstream, batch):
    """s3prl's pseudo wavs (0.05 s, requiring grad) pass forward + backward, and -f still trains the CNN and every layer."""
    upstream.train()
    wavs = pseudo_wavs(batch)
    hidden = upstream(wavs)["hidden_states"]
    sum(h.pow(2).mean() for h in hidden).backward()
    unused = ("masked_spec_embed",)  # SpecAugment's mask vector: always off here
    starved = [name for name, p in upstream.named_parameters()
               if p.requires_grad and not name.endswith(unused) and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    assert not starved, f"parameters without gradient: {starved}"
    assert all(w.grad is not None and torch.isfinite(w.grad).all() for w in wavs)


def test_tiny_input_below_receptive_field_still_gives_a_frame(upstream):
    upstream.eval()
    hidden = upstream([torch.randn(200, generator=GEN)])["hidden_states"]
    assert hidden[0].shape[1] >= 1


def test_mert_v1_frames_land_on_the_16k_grid(tmp_path):
    write_mert_dir(tmp_path, build_tiny_hubert(seed=2), version="v1")
    encoder = load_hubert_family(tmp_path)
    upstream = HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize).eval()
    for seconds in (0.05, 0.33, 1.0, 2.5):
        samples = int(seconds * 16000)
        hidden = upstream([torch.randn(samples, generator=GEN)])["hidden_states"]
        assert hidden[-1].shape[1] == conv_output_length(samples, [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2])


def test_mert_v1_sees_24khz_audio(tmp_path):
    """A 24 kHz model must receive resampled audio: a 6 kHz tone stays 6 kHz, not 9 kHz."""
    write_mert_dir(tmp_path, build_tiny_hubert(seed=2), version="v1")
    encoder = load_hubert_family(tmp_path)
    upstream = HubertFamilyUpstream(encoder.model, encoder.sample_rate, encoder.normalize).eval()
    seen = {}
    handle = encoder.model.feature_extractor.register_forward_pre_hook(lambda m, inp: seen.update(x=inp[0]))
    tone = torch.sin(2 * torch.pi * 6000 * torch.arange(16000) / 16000)
    upstream([tone])
    handle.remove()
    audio = seen["x"][0]
    assert audio.shape[-1] == 24000
    spectrum = torch.fft.rfft(audio).abs()
    assert abs(int(spectrum.argmax()) - 6000) <= 2  # 1 Hz bins over 1 s


def test_padding_is_masked_out():
    """With a layer-norm CNN (no statistics over time), a clip padded into a batch equals the clip alone."""
    model = build_tiny_hubert(seed=2, do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    upstream = HubertFamilyUpstream(model).eval()
    short, long = _wavs(0.6, 1.0)
    with torch.no_grad():
        alone = upstream([short])["hidden_states"]
        batched = upstream([short, long])["hidden_states"]
    for a, b in zip(alone, batched):
        assert torch.allclose(a[0], b[0, : a.shape[1]], atol=1e-4)


@pytest.mark.parametrize(
    "bad,message",
    [([], "empty wav list"), ([torch.zeros(2, 100)], "1-D"), ([torch.zeros(0)], "empty"), ("wav", "empty wav list")],
)
def test_bad_input_is_named(upstream, bad, message):
    with pytest.raises(UpstreamInputError, match=message):
        upstream(bad)
