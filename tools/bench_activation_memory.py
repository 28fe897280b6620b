"""Activation memory of one HuBERT-family forward per second of audio: the basis of ``max_batch_seconds: auto``.

Each run is a fresh process: a randomly initialised model (HuBERT Base, or the HuBERT Large layout)
is built, warmed up on one second, then one forward of CLIPS x SECONDS of audio runs in inference mode;
the peak RSS growth over that forward, divided by the seconds of audio, is printed (median and range
of ``--repeat`` runs). It is measured on the CPU (no GPU here); on CUDA the caching allocator and
cuDNN workspaces add to it, which ``upstream_merged.permutation.placement`` allows for with a margin.

    python tools/bench_activation_memory.py --size base --rate 16000 --clips 2
    python tools/bench_activation_memory.py --size large --rate 24000 --clips 1   # MERT-v1-330M's rate
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def child(size: str, rate: int, clips: int, seconds: float) -> dict:
    """One measurement in this process: peak RSS growth (MiB) of one forward and its MiB per second of audio."""
    import torch
    from transformers import HubertConfig, HubertModel

    from upstream_merged.core.memory import own_peak_rss

    torch.set_num_threads(1)
    if size == "base":
        config = HubertConfig()
    else:
        config = HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                              feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)
    model = HubertModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(clips, int(rate * seconds), generator=generator)
    mask = torch.ones_like(audio, dtype=torch.long) if config.feat_extract_norm == "layer" else None
    with torch.inference_mode():
        model(audio[:1, :rate], attention_mask=None if mask is None else mask[:1, :rate])
        before = own_peak_rss()
        model(audio, attention_mask=mask)
        after = own_peak_rss()
    growth = (after - before) / 2**20
    return {"growth_mib": growth, "mib_per_second": growth / (clips * seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("base", "large"), default="base")
    parser.add_argument("--rate", type=int, default=16000, help="sample rate of the audio (MERT-v1: 24000)")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per clip")
    parser.add_argument("--repeat", type=int, default=3, help="runs (fresh processes); median and range are printed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.size, args.rate, args.clips, args.seconds)))
        return
    runs = []
    for _ in range(args.repeat):
        done = subprocess.run([sys.executable, __file__, "--child", "--size", args.size, "--rate", str(args.rate),
                               "--clips", str(args.clips), "--seconds", str(args.seconds)],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1])["mib_per_second"])
    print(f"{args.size} at {args.rate} Hz, {args.clips} x {args.seconds:g} s, {args.repeat} runs: activation peak "
          f"{statistics.median(runs):.1f} MiB per second of audio (range {min(runs):.1f}-{max(runs):.1f})")


if __name__ == "__main__":
    main()
