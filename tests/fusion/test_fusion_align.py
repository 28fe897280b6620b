"""Alignment math on known tensors: frame and layer interpolation, width projection, merges."""
import pytest
import torch
import torch.nn.functional as F

from upstream_merged.fusion.align import (
    FusionInputError,
    LayerAligner,
    align_frames,
    layer_interpolation,
    target_frames,
)


def test_target_frames_follow_s3prl_rounding():
    assert target_frames(16000, 320) == 50
    assert target_frames(800, 320) == round(800 / 320) == 2
    assert target_frames(10, 320) == 1


def test_frame_interpolation_known_values():
    x = torch.tensor([0.0, 4.0]).view(1, 1, 2, 1)  # (B, L, T, D)
    out = align_frames(x, 4).flatten().tolist()
    # half-pixel centres: targets at source positions -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
    assert out == pytest.approx([0.0, 1.0, 3.0, 4.0])


def test_frame_interpolation_matches_torch_linear():
    x = torch.randn(2, 3, 49, 5, generator=torch.Generator().manual_seed(0))
    for frames in (50, 17, 49, 120):
        ours = align_frames(x, frames)
        ref = F.interpolate(x.permute(0, 1, 3, 2).reshape(2, 15, 49), size=frames, mode="linear",
                            align_corners=False).reshape(2, 3, 5, frames).permute(0, 1, 3, 2)
        # float32 rounding differs (weights summed in another order): a few ulp of |x| ≲ 4
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-5)


def test_layer_interpolation_known_values():
    m = layer_interpolation(3, 5)  # target layers at source positions 0, .5, 1, 1.5, 2
    expected = torch.tensor([[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]])
    torch.testing.assert_close(m, expected)
    torch.testing.assert_close(layer_interpolation(4, 4), torch.eye(4))
    torch.testing.assert_close(layer_interpolation(13, 13).sum(1), torch.ones(13))
    assert layer_interpolation(1, 3).tolist() == [[1.0], [1.0], [1.0]]


def _states(depth, frames, width, scale=1.0):
    return [torch.full((1, frames, width), scale * i) for i in range(depth)]


def test_add_merge_interpolates_layers_and_frames():
    aligner = LayerAligner({"a": 2, "b": 2}, {"a": 3, "b": 5}, "add")
    a, b = _states(3, 4, 2), _states(5, 6, 2, scale=10.0)  # layer i holds the constant i (x10 for b)
    out = aligner({"a": a, "b": b}, frames=5)
    assert out.shape == (1, 5, 5, 2)
    # a's 3 layers interpolated to 5: values 0, .5, 1, 1.5, 2; b is already 5 deep: 0, 10, ..., 40
    expected = torch.tensor([0.0, 10.5, 21.0, 31.5, 42.0])
    torch.testing.assert_close(out[0, :, 0, 0], expected)
    torch.testing.assert_close(out[0, :, :, :], out[0, :, :1, :1].expand(5, 5, 2))  # constant over time


def test_width_projection_only_where_widths_differ():
    aligner = LayerAligner({"a": 4, "b": 6}, {"a": 2, "b": 2}, "add")
    assert list(aligner.projections) == ["a"] and aligner.width == 6
    proj = aligner.projections["a"]
    a, b = [torch.randn(2, 3, 4) for _ in range(2)], [torch.zeros(2, 3, 6) for _ in range(2)]
    out = aligner({"a": a, "b": b}, frames=3)
    torch.testing.assert_close(out[:, 1], proj(a[1]))


def test_concat_merge_projects_concatenation():
    aligner = LayerAligner({"a": 4, "b": 6}, {"a": 2, "b": 2}, "concat")
    a, b = [torch.randn(1, 3, 4) for _ in range(2)], [torch.randn(1, 3, 6) for _ in range(2)]
    out = aligner({"a": a, "b": b}, frames=3)
    torch.testing.assert_close(out[:, 0], aligner.concat_projection(torch.cat([a[0], b[0]], -1)))


def test_stack_merge_keeps_every_layer():
    aligner = LayerAligner({"a": 3, "b": 3}, {"a": 2, "b": 4}, "stack")
    out = aligner({"a": _states(2, 5, 3), "b": _states(4, 5, 3, 10.0)}, frames=5)
    assert aligner.out_layers == 6 and out.shape == (1, 6, 5, 3)
    assert out[0, :, 0, 0].tolist() == [0, 1, 0, 10, 20, 30]


def test_mismatched_inputs_raise_named_errors():
    aligner = LayerAligner({"hubert": 4, "wavlm": 4}, {"hubert": 3, "wavlm": 3}, "add")
    good = _states(3, 5, 4)
    with pytest.raises(FusionInputError, match="wavlm"):
        aligner({"hubert": good}, 5)
    with pytest.raises(FusionInputError, match="'wavlm': expected 3 hidden states, got 2"):
        aligner({"hubert": good, "wavlm": good[:2]}, 5)
    with pytest.raises(FusionInputError, match=r"'wavlm': expected \(B, T, 4\)"):
        aligner({"hubert": good, "wavlm": _states(3, 5, 7)}, 5)
    with pytest.raises(FusionInputError, match="batch size"):
        aligner({"hubert": good, "wavlm": [torch.zeros(2, 5, 4)] * 3}, 5)
