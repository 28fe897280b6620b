"""Measure the two CNN policies for a pair whose feature encoders differ in norm type and bias (CPU, tiny twins).

The twins have the exact published layouts of the large pair (sizes shrunk): a = facebook/hubert-large-ll60k
(layer norm in every conv, conv biases), b = m-a-p/MERT-v1-330M (one group norm, no biases); both pre-LN. b's
feature projection and transformer are a's, scrambled by random symmetries (so a good merge stays close to
both); b's CNN has b's layout, with either a's filters (``same``: the most favourable case for averaging the
convolutions) or filters of its own (``own``: as two separately trained models).

Policies, after the same correlation alignment:
- ``from_a`` (what ``merge`` does): a's CNN unmerged; feature projection + transformer averaged;
- ``conv_avg``: conv weights averaged as well (b's permuted filters), a's norms and biases kept.

Figures per policy (relative L2 errors over random 16 kHz clips, median and range over seeds):
- ``cnn_vs_a``: CNN output (the feature projection's input) against a's;
- ``out_vs_a``: last hidden state against a's;
- ``out_vs_target``: last hidden state against ``alpha * a + (1 - alpha) * aligned b`` (the output-space average).

    python tools/measure_cnn_policy.py                  # 3 seeds, alpha 0.9 and 0.5 (a few minutes on 2 cores)
    python tools/measure_cnn_policy.py --seeds 1 --clips 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict

import torch

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "tests" / "models" / "published_configs"
TRANSFORMER = ("ffn", "attn", "residual")


def _twin(a, layout_b: dict, seed: int, filters: str):
    """b with b's layout: a's feature projection + transformer scrambled; CNN filters a's (``same``) or its own."""
    from upstream_merged.permutation.apply import apply_permutations, random_permutations
    from upstream_merged.permutation.spec import spec_for_model
    from upstream_merged.testing.published_layout import build_published_layout

    b = build_published_layout(layout_b, seed)
    spec = spec_for_model(a)
    perms = random_permutations(spec, spec.select(TRANSFORMER), torch.Generator().manual_seed(seed))
    rest = {k: v for k, v in a.state_dict().items() if not k.startswith("feature_extractor.")}
    state = b.state_dict()
    state.update(apply_permutations(rest, spec, perms))
    if filters == "same":
        state.update({k: v.clone() for k, v in a.state_dict().items()
                      if k.startswith("feature_extractor.") and k.endswith(".conv.weight")})
    b.load_state_dict(state)
    return b.eval()


def _merged(a, b, alignment, alpha: float, policy: str):
    """The merged model for ``policy`` (a copy of a's architecture)."""
    import copy

    from upstream_merged.permutation.apply import apply_permutations
    from upstream_merged.permutation.merge import FEATURE_ENCODER, interpolate_into
    from upstream_merged.permutation.spec import spec_for_model

    b_state = apply_permutations(b.state_dict(), spec_for_model(b), alignment.perms)
    merged = copy.deepcopy(a)
    interpolate_into(merged, {k: b_state.get(k, v) for k, v in a.state_dict().items()}, alpha,
                     keep_prefixes=(FEATURE_ENCODER,))
    if policy == "conv_avg":
        with torch.no_grad():
            for name, tensor in merged.state_dict().items():
                if name.startswith(FEATURE_ENCODER) and name.endswith(".conv.weight"):
                    tensor.copy_(alpha * a.state_dict()[name] + (1 - alpha) * b_state[name])
    return merged.eval()


def _rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float((x - ref).norm() / ref.norm().clamp_min(1e-12))


def measure(seed: int, filters: str, alphas, clips: int, seconds: float) -> Dict[str, Dict[str, float]]:
    """Figures of both policies for one twin pair."""
    from upstream_merged.models.hubert import LoadedEncoder
    from upstream_merged.permutation.merge import align
    from upstream_merged.permutation.recipe import Calibration
    from upstream_merged.testing.published_layout import build_published_layout

    layout_a = json.loads((PUBLISHED / "facebook--hubert-large-ll60k.json").read_text())
    layout_b = json.loads((PUBLISHED / "m-a-p--MERT-v1-330M.json").read_text())
    a = build_published_layout(layout_a, 1000 + seed)
    b = _twin(a, layout_b, 2000 + seed, filters)
    calibration = Calibration(synthetic={"clips": 8, "seconds": 1.5}, batch_size=4, frames_per_second=None,
                              cnn_frames_per_second=None)
    alignment = align(LoadedEncoder(a, 16000, "hubert"), LoadedEncoder(b, 16000, "mert"), ("cnn",) + TRANSFORMER,
                      calibration, seed=seed, progress=False)
    waves = torch.randn(clips, int(16000 * seconds), generator=torch.Generator().manual_seed(3000 + seed))
    basis = alignment.perms["residual"]
    out: Dict[str, Dict[str, float]] = {}
    with torch.no_grad():
        cnn_a = a.feature_extractor(waves)
        h_a, h_b = a(waves).last_hidden_state, b(waves).last_hidden_state[..., basis]
        for alpha in alphas:
            target = alpha * h_a + (1 - alpha) * h_b
            for policy in ("from_a", "conv_avg"):
                merged = _merged(a, b, alignment, alpha, policy)
                h = merged(waves).last_hidden_state
                out[f"{policy} alpha={alpha:g}"] = {
                    "cnn_vs_a": _rel(merged.feature_extractor(waves), cnn_a),
                    "out_vs_a": _rel(h, h_a),
                    "out_vs_target": _rel(h, target),
                }
    return out


def main(argv=None) -> int:
    """Print the figures (median and range over seeds) for both filter cases."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.9, 0.5])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for filters in ("same", "own"):
        runs = [measure(seed, filters, args.alphas, args.clips, args.seconds) for seed in range(args.seeds)]
        print(f"b's CNN filters: {filters} ({args.seeds} seed(s), {args.clips} clip(s) x {args.seconds:g} s)")
        for row in runs[0]:
            cells = []
            for metric in runs[0][row]:
                values = [run[row][metric] for run in runs]
                cells.append(f"{metric} {statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})")
            print(f"  {row:<22} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
