"""Alignment math on known tensors: layer interpolation, width projection, merges (frames: tests/core/test_core_frames.py)."""
import pytest
import torch

from upstream_merged.fusion.align import FusionInputError, LayerAligner, layer_interpolation


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
