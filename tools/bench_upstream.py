#!/usr/bin/env python3
"""Benchmark our HuBERT expert against s3prl's own hf_hubert_custom on the same weights and inputs.

Prints the forward-time ratio ours / s3prl's (goal 1.00 +- 0.03) and the max abs difference of all
hidden states, measured in one run (interleaved repetitions, median time).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="tiny model (smoke run) instead of HuBERT-base size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import s3prl.hub as hub
    from transformers import HubertConfig, HubertModel

    from upstream_merged.tiny import randomize_
    from upstream_merged.tiny.hubert import TINY_HUBERT, write_hubert_dir

    torch.set_grad_enabled(False)
    config = HubertConfig(**(TINY_HUBERT if args.tiny else {}), layerdrop=0.0, apply_spec_augment=False)  # {}: base
    model = randomize_(HubertModel(config), 0).eval()
    generator = torch.Generator().manual_seed(0)
    lengths = [int(args.seconds * 16000 * (1 - 0.1 * i)) for i in range(args.batch)]  # padded batch
    wavs = [torch.randn(n, generator=generator) * 0.1 for n in lengths]
    with tempfile.TemporaryDirectory() as tmp:
        write_hubert_dir(Path(tmp), model)
        ours = hub.hubert_base_hf(ckpt=tmp).eval()
        theirs = hub.hf_hubert_custom(ckpt=tmp).eval()
        hidden_ours = ours(wavs)["hidden_states"]
        hidden_theirs = theirs(wavs)["hidden_states"]
        max_diff = max(float((a - b).abs().max()) for a, b in zip(hidden_ours, hidden_theirs))
        times_ours, times_theirs = [], []
        for repeat in range(args.repeats):  # ABBA order so neither side always runs first
            pair = [(times_ours, ours), (times_theirs, theirs)]
            for times, upstream in pair if repeat % 2 == 0 else pair[::-1]:
                times.append(_timed(lambda: upstream(wavs)))
    t_ours, t_theirs = statistics.median(times_ours), statistics.median(times_theirs)
    size = "tiny" if args.tiny else "HuBERT-base size (random weights)"
    print(f"model: {size}; batch {args.batch} x up to {args.seconds} s; torch threads {torch.get_num_threads()}")
    print(f"hidden states compared: {len(hidden_ours)} (ours) vs {len(hidden_theirs)} (hf_hubert_custom)")
    print(f"median forward: ours {t_ours:.3f} s, hf_hubert_custom {t_theirs:.3f} s")
    print(f"forward-time ratio ours/hf_hubert_custom: {t_ours / t_theirs:.3f} (goal 1.00 +- 0.03)")
    print(f"max abs difference of hidden states: {max_diff:.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
