"""Frame arithmetic on known values: CNN frame counts and receptive field, s3prl's frame count, time interpolation."""
import pytest
import torch
import torch.nn.functional as F

from upstream_merged.core.frames import align_frames, conv_output_length, interpolate_frames, receptive_field, target_frames

KERNELS, STRIDES = [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]  # the wav2vec2 / HuBERT CNN


def test_wav2vec2_cnn_counts_and_receptive_field():
    assert receptive_field(KERNELS, STRIDES) == 400  # 25 ms at 16 kHz
    assert conv_output_length(16000, KERNELS, STRIDES) == 49
    assert conv_output_length(400, KERNELS, STRIDES) == 1
    assert conv_output_length(399, KERNELS, STRIDES) == 0
    assert conv_output_length(15, [10, 3], [5, 2]) == 0  # 2 frames after the first layer, too few for the second


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


def test_interpolate_frames_agrees_with_align_frames():
    x = torch.randn(2, 37, 6, generator=torch.Generator().manual_seed(1))  # (B, T, D)
    for frames in (37, 50, 12):
        torch.testing.assert_close(interpolate_frames(x, frames), align_frames(x[:, None], frames)[:, 0],
                                   atol=5e-5, rtol=1e-5)
    assert interpolate_frames(x, 37) is x
