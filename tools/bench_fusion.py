"""Benchmark the fusion upstream on CPU with random base-size weights (nothing is downloaded).

Prints, measured in this run:
1. For each interface: fusion forward time / sum of the backbones' own forwards on the same audio
   (goal: interface overhead <= 5%), and the aligner + interface time alone as a share of that sum.
2. Whisper encoder: time for a short clip encoded with context="clip" (no 30 s padding) vs
   context="padded" (the WhisperFeatureExtractor reference), and how far the clip outputs move.
3. With --checkpoint-size only: the size of what stock ``run_downstream.py -f`` saves for
   fusion_hubert_wavlm_hconv ({"Upstream": upstream.state_dict(), "Optimizer": AdamW state, ...}),
   with the backbones' fingerprint (now) vs with the backbone tensors (before), and the time the
   fingerprint adds to building the upstream.

    python tools/bench_fusion.py                 # HuBERT Base, WavLM Base+, Whisper-base sizes
    python tools/bench_fusion.py --tiny          # seconds-long smoke run with the tiny test sizes
    python tools/bench_fusion.py --checkpoint-size [--tiny]
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Callable, Dict, List

import torch
from transformers import HubertConfig, HubertModel, WavLMConfig, WavLMModel, WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids

from upstream_merged.core.frames import target_frames
from upstream_merged.fusion.backbones import FrozenBackbone
from upstream_merged.fusion.model import BACKBONE_PREFIX, FusionUpstream
from upstream_merged.fusion.spec import FusionSpec
from upstream_merged.fusion.whisper import WhisperEncoderUpstream
from upstream_merged.models.whisper import WhisperFrontendConfig
from upstream_merged.tiny.fusion import TINY_WAVLM, TINY_WHISPER
from upstream_merged.tiny.hubert import TINY_HUBERT
from upstream_merged.upstream.frozen_state import digest_tensors
from upstream_merged.upstream.hubert import HubertFamilyUpstream

NO_DROP = dict(layerdrop=0.0, apply_spec_augment=False)


def build_backbones(tiny: bool, whisper_context: str = "clip") -> Dict[str, FrozenBackbone]:
    """Randomly initialised backbones: base sizes (HuBERT Base, WavLM Base+, Whisper-base encoder) or tiny."""
    torch.manual_seed(0)
    hubert = HubertModel(HubertConfig(**(TINY_HUBERT if tiny else {}), **NO_DROP)).eval()
    wavlm = WavLMModel(WavLMConfig(**(TINY_WAVLM if tiny else {}), **NO_DROP)).eval()
    whisper_config = WhisperConfig(**TINY_WHISPER) if tiny else WhisperConfig(
        d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80)
    encoder = WhisperEncoder(whisper_config).eval()
    with torch.no_grad():
        encoder.embed_positions.weight.copy_(sinusoids(*encoder.embed_positions.weight.shape))
    return {
        "hubert": FrozenBackbone(HubertFamilyUpstream(hubert), "hubert", hubert.config.hidden_size,
                                 hubert.config.num_hidden_layers + 1),
        "wavlm": FrozenBackbone(HubertFamilyUpstream(wavlm), "wavlm", wavlm.config.hidden_size,
                                wavlm.config.num_hidden_layers + 1),
        "whisper": FrozenBackbone(WhisperEncoderUpstream(encoder, WhisperFrontendConfig(), whisper_context), "whisper",
                                  whisper_config.d_model, whisper_config.encoder_layers + 1),
    }


# CPU time of this process by default: on a shared machine other processes' load barely moves it
# (wall time does, by tens of percent), and with one torch thread it is the compute the forward costs.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
_now = CLOCKS["cpu"]


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Fastest time of ``fn`` over ``repeats`` runs after one warm-up, under no_grad (noise only adds time)."""
    with torch.no_grad():
        fn()
        return min(_clock(fn) for _ in range(repeats))


def _clock(fn: Callable[[], object]) -> float:
    start = _now()
    fn()
    return _now() - start


@torch.no_grad()
def bench_interfaces(backbones: Dict[str, FrozenBackbone], wavs: List[torch.Tensor], repeats: int) -> None:
    """Fusion forward vs the sum of its backbones' forwards, per interface.

    Each repeat times the backbones one by one, then the fusion forward, then the aligner + interface
    on cached hidden states, back to back; each figure is the fastest of the repeats (noise on a
    shared machine only ever adds time), ratios are taken between those fastest times.
    """
    frames = target_frames(max(len(w) for w in wavs), 320)
    hidden = {role: b(wavs) for role, b in backbones.items()}  # also warms every backbone up
    cases = [("hconv", ["hubert", "wavlm"]), ("chconv", ["hubert", "wavlm"]), ("ws", ["hubert", "wavlm"]),
             ("gumd", ["hubert", "wavlm"]), ("hconv", ["hubert", "whisper"]), ("hconv", ["hubert", "wavlm", "whisper"])]
    print(f"{'interface':9s} {'backbones':22s} {'sum of own':>11s} {'fusion':>9s} {'fusion/sum':>10s} "
          f"{'overhead':>9s} {'interface-only':>15s} {'params':>10s}")
    for interface, roles in cases:
        model = FusionUpstream({r: backbones[r] for r in roles}, FusionSpec(interface=interface)).eval()
        subset = {r: hidden[r] for r in roles}

        def head():
            stack = model.aligner(subset, frames)
            return stack if model.interface is None else model.interface(stack)

        head()
        own, fused, alone = [], [], []
        for _ in range(repeats):
            own.append(sum(_clock(lambda b=backbones[r]: b(wavs)) for r in roles))
            fused.append(_clock(lambda: model(wavs)))
            alone.append(_clock(head))
        ratio, share = min(fused) / min(own), min(alone) / min(own)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(f"{interface:9s} {'+'.join(roles):22s} {1000 * min(own):9.0f}ms {1000 * min(fused):7.0f}ms "
              f"{ratio:10.3f} {100 * (ratio - 1):8.1f}% {100 * share:14.2f}% {params:10,d}")


def bench_whisper(backbone: FrozenBackbone, seconds: float, repeats: int) -> None:
    """Whisper encoder on one short clip: clip context vs the 30 s padded reference."""
    upstream = backbone.upstream
    wav = [torch.randn(int(seconds * 16000)) * 0.1]
    clip_time = timed(lambda: upstream(wav), repeats)
    upstream.context = "padded"
    padded_time = timed(lambda: upstream(wav), repeats)
    with torch.no_grad():
        padded = upstream(wav)["hidden_states"]
    upstream.context = "clip"
    with torch.no_grad():
        clip = upstream(wav)["hidden_states"]
    error = [float((c - p).norm() / p.norm()) for c, p in zip(clip, padded)]
    print(f"whisper encoder, one {seconds:g} s clip: clip context {clip_time * 1000:.0f} ms, 30 s padded "
          f"{padded_time * 1000:.0f} ms -> {padded_time / clip_time:.1f}x faster "
          f"({100 * (1 - clip_time / padded_time):.0f}% saved)")
    print("  relative difference clip vs padded per hidden state (random weights): "
          + " ".join(f"{e:.2f}" for e in error))


def saved_bytes(states: Dict[str, object]) -> int:
    """Bytes ``torch.save`` writes for ``states`` (as the runner saves states-*.ckpt / dev-best.ckpt)."""
    buffer = io.BytesIO()
    torch.save(states, buffer)
    return buffer.tell()


def bench_checkpoint_size(backbones: Dict[str, FrozenBackbone], repeats: int) -> None:
    """What stock -f saves for fusion_hubert_wavlm_hconv: backbone fingerprint (now) vs backbone tensors (before)."""
    pair = {role: backbones[role] for role in ("hubert", "wavlm")}
    model = FusionUpstream(pair, FusionSpec(interface="hconv"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)  # the SUPERB recipes' optimizer; state for trained tensors only
    for parameter in trainable:
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    now = model.state_dict()
    before = {**{f"{BACKBONE_PREFIX}{k}": v for k, v in model.backbones.state_dict().items()},
              **model.interface_state_dict()}  # what state_dict() returned before the fingerprint
    rest = {"Optimizer": optimizer.state_dict(), "Step": 1, "Epoch": 0}
    mib = 2 ** 20
    rows = [("Upstream only", saved_bytes({"Upstream": before}), saved_bytes({"Upstream": now})),
            ("Upstream + Optimizer", saved_bytes({"Upstream": before, **rest}), saved_bytes({"Upstream": now, **rest}))]
    interface = sum(p.numel() for p in trainable)
    frozen = sum(p.numel() for p in model.backbones.parameters())
    print(f"fusion_hubert_wavlm_hconv -f checkpoint: interface {interface:,} values, backbones {frozen:,} values "
          f"({len(now)} saved tensors now, {len(before)} before)")
    for what, old, new in rows:
        print(f"  {what:22s} before {old / mib:8.1f} MiB ({old / 1e9:.3f} GB)   now {new / mib:7.2f} MiB   "
              f"-> {old / new:.0f}x smaller")
    state = model.backbones.state_dict()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        digest_tensors(state.items())
        times.append(time.perf_counter() - start)
    hashed = sum(t.numel() * t.element_size() for t in state.values()) / mib
    print(f"  fingerprint of the backbones at build (sha256 over {hashed:.0f} MiB): "
          f"median {statistics.median(times):.2f} s wall over {repeats} runs")


def main() -> None:
    """Parse arguments and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny test sizes (smoke run)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="clip length for the fusion benchmark")
    parser.add_argument("--whisper-seconds", type=float, default=2.0, help="clip length for the Whisper benchmark")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is steadier on a shared machine)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="process CPU time or wall time")
    parser.add_argument("--checkpoint-size", action="store_true",
                        help="only measure the -f checkpoint of fusion_hubert_wavlm_hconv (before/now) "
                             "and the fingerprint time")
    args = parser.parse_args()
    global _now
    _now = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    backbones = build_backbones(args.tiny)
    if args.checkpoint_size:
        print(f"sizes: {'tiny' if args.tiny else 'base (HuBERT Base, WavLM Base+)'}; random weights")
        bench_checkpoint_size(backbones, args.repeats)
        return
    size = "tiny" if args.tiny else "base (HuBERT Base, WavLM Base+, Whisper-base encoder)"
    print(f"sizes: {size}; batch {args.batch} x {args.seconds:g} s; fastest of {args.repeats}; "
          f"{args.threads} thread(s); {args.clock} time")
    generator = torch.Generator().manual_seed(0)
    wavs = [0.1 * torch.randn(int(args.seconds * 16000), generator=generator) for _ in range(args.batch)]
    bench_interfaces(backbones, wavs, args.repeats)
    bench_whisper(backbones["whisper"], args.whisper_seconds, args.repeats)


if __name__ == "__main__":
    main()
