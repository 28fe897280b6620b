"""Device placement without a GPU: every tensor the forwards create lands on their inputs' device; no host syncs.

No CUDA here, so models and wavs go to the ``meta`` device and a TorchFunctionMode watches every torch call:

- a call whose tensor inputs are all on meta (or that has none, as a factory: zeros, arange, tensor,
  windows, filterbanks ...) but returns a tensor on the CPU is a factory that ignored the input's
  device - on a GPU it would land on the CPU. 0-dim results are allowed (CPU scalars mix with CUDA tensors);
- ``item`` / ``bool`` / ``int`` / ``tolist`` on a device tensor is a host sync (meta tensors have no
  values, so such a call would fail); it is recorded with its caller and answered with a dummy;
- a call that turns host data into a device tensor (``Tensor.to`` of a CPU tensor, ``torch.tensor``
  of a Python list with a device) is a host-to-device copy: recorded as an upload (dtype and shape),
  so tests can count them (audio moved once per batch, no lengths uploaded per forward).

Findings are attributed to the first caller outside torch; only code of this package must be clean
(a sync inside transformers' own attention-mask helper is reported, not failed).
Results on CPU equal the device path by construction here; a real GPU run is not tested (none available).
"""
from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

import upstream_merged
from upstream_merged.models.hubert import LoadedEncoder
from upstream_merged.permutation.calibration import Calibrator
from upstream_merged.permutation.spec import spec_for_model
from upstream_merged.tiny.hubert import build_tiny_hubert

PACKAGE = str(Path(upstream_merged.__file__).parent) + os.sep
TORCH = str(Path(torch.__file__).parent) + os.sep
SYNCS = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.__int__, torch.Tensor.__float__,
         torch.Tensor.tolist, torch.Tensor.__index__}
DUMMY = {torch.Tensor.__bool__: False, torch.Tensor.tolist: []}
FROM_HOST_DATA = {torch.tensor, torch.as_tensor}


def _caller() -> str:
    """file:line of the innermost frame outside torch and this test."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.startswith(TORCH) and frame.filename != __file__:
            return f"{frame.filename}:{frame.lineno}"
    return "?"


class DeviceWatch(TorchFunctionMode):
    """Record CPU tensors created from meta inputs (or from nothing) and host syncs on meta tensors."""

    def __init__(self):
        super().__init__()
        self.factories: List[Tuple[str, str]] = []
        self.syncs: List[Tuple[str, str]] = []
        self.uploads: List[Tuple[str, str, torch.dtype, tuple]] = []  # (function, caller, dtype, shape)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        if func in SYNCS and inputs and inputs[0].is_meta:
            self.syncs.append((func.__name__, _caller()))
            return DUMMY.get(func, 1)
        out = func(*args, **kwargs)
        from_host = any(t.device.type == "cpu" and t.dim() > 0 for t in inputs) or (func in FROM_HOST_DATA and not inputs)
        if from_host:
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.is_meta and t.dim() > 0:
                    self.uploads.append((getattr(func, "__name__", str(func)), _caller(), t.dtype, tuple(t.shape)))
                    break
        if not any(t.device.type == "cpu" for t in inputs):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.device.type == "cpu" and t.dim() > 0:
                    self.factories.append((getattr(func, "__name__", str(func)), _caller()))
                    break
        return out

    def ours(self, found: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
        """Findings whose caller is this package's code."""
        return [hit for hit in found if hit[1].startswith(PACKAGE)]

    def assert_clean(self) -> None:
        """Fail listing every factory and host sync in this package's code (libraries' own are reported only).

        (torchaudio's Kaldi fbank builds its mel matrix on the CPU and moves it with ``.to(device)``: an
        explicit copy, correct on a GPU; the test cannot tell it from a forgotten device, so it names it.)
        """
        if self.factories or self.syncs:
            print(f"library findings (not ours): factories {self.factories}, syncs {self.syncs}")
        assert not self.ours(self.factories), f"tensors created on the CPU from meta inputs: {self.ours(self.factories)}"
        assert not self.ours(self.syncs), f"host syncs in upstream_merged: {self.ours(self.syncs)}"


def _meta_wavs() -> list:
    return [torch.zeros(16000, device="meta"), torch.zeros(11000, device="meta")]


def test_the_watch_catches_a_cpu_default_factory_and_a_host_sync():
    watch = DeviceWatch()
    x, host = torch.zeros(5, device="meta"), torch.ones(6)
    with watch:
        torch.arange(x.shape[0])  # forgot device=x.device
        torch.zeros(3, device=x.device)  # fine
        torch.tensor(2.0)  # a 0-dim scalar: fine on CUDA as well
        int(x.sum())
        torch.tensor([3, 4], device=x.device)  # a Python list copied to the device
        host.to(x.device)  # a host tensor copied to the device
        x + 1  # on the device: nothing
    assert [name for name, _ in watch.factories] == ["arange"]
    assert [name for name, _ in watch.syncs] == ["__int__"]
    assert [(name, shape) for name, _, _, shape in watch.uploads] == [("tensor", (2,)), ("to", (6,))]


def test_model_input_keeps_the_lengths_on_the_host():
    from upstream_merged.upstream.hubert import hubert_model_input

    watch = DeviceWatch()
    with watch:
        batch, mask = hubert_model_input(_meta_wavs(), normalize=True)
    assert batch.is_meta and mask.is_meta and tuple(mask.shape) == (2, 16000)
    assert not watch.ours(watch.uploads), f"host-to-device copies per forward: {watch.ours(watch.uploads)}"
    watch.assert_clean()
    cpu_batch, cpu_mask = hubert_model_input([torch.ones(5), torch.ones(3)], normalize=False)
    assert cpu_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]] and cpu_mask.dtype == torch.long


def test_hubert_family_upstream_creates_nothing_off_device():
    from upstream_merged.upstream.hubert import HubertFamilyUpstream

    upstream = HubertFamilyUpstream(build_tiny_hubert(1).to("meta"), sample_rate=24000, normalize=True)  # MERT-v1-like
    watch = DeviceWatch()
    with torch.inference_mode(), watch:
        out = upstream(_meta_wavs())
    assert out["hidden_states"][0].is_meta
    watch.assert_clean()


def test_beats_upstream_creates_nothing_off_device_and_never_syncs():
    from upstream_merged.tiny.beats import build_tiny_beats
    from upstream_merged.upstream.beats import BEATsUpstream

    upstream = BEATsUpstream(build_tiny_beats(2).eval().to("meta"))
    watch = DeviceWatch()
    with torch.inference_mode(), watch:
        out = upstream(_meta_wavs())
    assert out["hidden_states"][0].is_meta
    watch.assert_clean()


def test_whisper_frontend_and_encoder_create_nothing_off_device():
    from upstream_merged.fusion.whisper import WhisperEncoderUpstream
    from upstream_merged.models.whisper import WhisperFrontendConfig
    from upstream_merged.tiny.fusion import build_tiny_whisper

    model = build_tiny_whisper(3)
    frontend = WhisperFrontendConfig(num_mel_bins=model.config.num_mel_bins)
    upstream = WhisperEncoderUpstream(model.encoder, frontend).to("meta")
    watch = DeviceWatch()
    with torch.inference_mode(), watch:
        out = upstream(_meta_wavs())
    assert out["hidden_states"][0].is_meta
    watch.assert_clean()


def test_fusion_layer_alignment_creates_nothing_off_device():
    from upstream_merged.fusion.align import LayerAligner

    aligner = LayerAligner({"a": 8, "b": 12}, {"a": 3, "b": 5}, "add", width=8).to("meta")
    hidden = {"a": [torch.zeros(2, 50, 8, device="meta")] * 3, "b": [torch.zeros(2, 33, 12, device="meta")] * 5}
    watch = DeviceWatch()
    with torch.inference_mode(), watch:
        out = aligner(hidden, 50)
    assert out.is_meta
    watch.assert_clean()


def test_calibration_runs_on_the_models_device(monkeypatch):
    from upstream_merged.permutation.audio import list_clips
    from upstream_merged.permutation.recipe import Calibration

    a, b = build_tiny_hubert(4).to("meta"), build_tiny_hubert(5).to("meta")
    spec = spec_for_model(a)
    calibration = Calibration(synthetic={"clips": 3, "seconds": 1.0}, batch_size=2)
    calibrator = Calibrator(LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 24000, "mert"), spec,
                            spec.select(("cnn", "ffn", "attn", "residual")), 10.0, seed=0,
                            device=torch.device("meta"), cross_dtype=torch.float32)
    watch = DeviceWatch()
    with watch:
        result = calibrator.run(list_clips(calibration, 0), 1.0, 2, progress=False)
    assert result.clips == 3
    audio = [shape for _, caller, dtype, shape in watch.ours(watch.uploads) if dtype.is_floating_point]
    # one copy per batch (2 clips, then 1), after the priming clip: never one per clip
    assert audio == [(16000,), (32000,), (16000,)], audio
    assert all(m.raw.is_meta and m.sum_a.is_meta for group in result.moments.values() for m in group)
    watch.assert_clean()


def test_frontends_compute_in_float32_under_fp16_autocast():
    from upstream_merged.models.beats import beats_fbank
    from upstream_merged.fusion.whisper import WhisperLogMel
    from upstream_merged.models.whisper import WhisperFrontendConfig

    t = np.arange(16000) / 16000
    wav = torch.from_numpy((0.9 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))  # loud: |X|^2 >> 65504
    reference = beats_fbank(wav)
    with torch.autocast("cpu", dtype=torch.float16):
        under = beats_fbank(wav)
    assert under.dtype == torch.float32 and torch.isfinite(under).all()
    assert torch.equal(under, reference)
    mel = WhisperLogMel(WhisperFrontendConfig(num_mel_bins=80))
    reference = mel(wav[None], 100)
    with torch.autocast("cpu", dtype=torch.float16):
        under = mel(wav[None], 100)
    assert under.dtype == torch.float32 and torch.equal(under, reference)
    half = mel.half()  # s3prl-style .half() model: the buffers are fp16, the frontend still runs in float32
    converted = half(wav[None].half(), 100)
    assert converted.dtype == torch.float32 and (converted - reference).abs().max() < 0.02  # fp16-rounded filters only


@pytest.mark.parametrize("name", ["cpu", "auto"])
def test_device_names_resolve_here_and_cuda_is_refused_by_name(name):
    from upstream_merged.permutation.audio import CalibrationError
    from upstream_merged.permutation.calibration import resolve_device

    assert resolve_device(name) == torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(CalibrationError, match="'cuda:1'.*--device cpu"):
            resolve_device("cuda:1")
    with pytest.raises(CalibrationError, match="unknown device 'tpu'"):
        resolve_device("tpu")
