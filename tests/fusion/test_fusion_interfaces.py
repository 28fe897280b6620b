"""HConv (Shih & Harwath) and GumD interfaces."""
import pytest
import torch
import torch.nn.functional as F

from upstream_merged.fusion.align import FusionInputError
from upstream_merged.fusion.interfaces import GumbelDimensionSelect, HConv, hconv_depths


def test_hconv_base_size_matches_the_paper():
    hconv = HConv(num_layers=13, width=768)
    assert hconv_depths(13) == [13, 5, 2]
    assert [(c.in_channels, c.out_channels) for c in hconv.convs] == [(768, 768), (768, 384)]
    assert all(c.kernel_size == (5,) and c.stride == (3,) and c.padding == (2,) for c in hconv.convs)
    assert sum(p.numel() for p in hconv.parameters()) == 4_424_832
    assert hconv.output_dim == 768


def test_hconv_conv_count_is_floor_log3_at_exact_powers():
    assert len(hconv_depths(9)) - 1 == 2  # log(9)/log(3) is 1.999... in floating point
    assert len(hconv_depths(27)) - 1 == 3
    assert len(hconv_depths(26)) - 1 == 2
    assert len(hconv_depths(2)) - 1 == 0
    assert HConv(2, 8).output_dim == 16  # no conv: the two layers are flattened


def test_hconv_is_relu_convs_over_layers_flattened():
    torch.manual_seed(0)
    hconv = HConv(num_layers=4, width=6)
    x = torch.randn(2, 4, 3, 6)  # (B, L, T, D)
    out = hconv(x)
    frame = x[1, :, 2, :].T[None]  # (1, D, L) for one frame
    expected = F.relu(hconv.convs[0](frame)).flatten()
    assert out.shape == (2, 3, hconv.output_dim) and hconv.output_dim == 3 * 2
    torch.testing.assert_close(out[1, 2], expected)


def test_hconv_layer_norm_is_parameter_free():
    plain, normed = HConv(5, 8), HConv(5, 8, layer_norm=True)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in normed.parameters())
    normed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 5, 2, 8)
    torch.testing.assert_close(normed(x), plain(F.layer_norm(x, (8,))))


def test_hconv_rejects_wrong_stack():
    with pytest.raises(FusionInputError, match=r"HConv expects \(B, 13 layers, T, 768\)"):
        HConv(13, 768)(torch.zeros(1, 12, 2, 768))


def test_gumd_eval_is_argmax_and_training_reaches_logits():
    torch.manual_seed(0)
    gumd = GumbelDimensionSelect(num_sources=3, width=4, output_dim=5).eval()
    x = torch.randn(2, 3, 7, 4)
    picks = gumd.logits.argmax(-1)
    selected = torch.stack([x[:, picks[d], :, d] for d in range(4)], dim=-1)
    torch.testing.assert_close(gumd(x), gumd.projection(selected))
    torch.testing.assert_close(gumd(x), gumd(x))
    gumd.train()
    gumd(x).sum().backward()
    assert gumd.logits.grad is not None and gumd.logits.grad.abs().sum() > 0
    with pytest.raises(FusionInputError, match="GumD"):
        gumd(torch.zeros(1, 2, 7, 4))
