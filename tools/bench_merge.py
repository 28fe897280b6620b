"""Benchmark the correlation-permutation merge on HuBERT-base-sized random models (CPU), in one run.

Prints:
- merge wall time / bare forward passes of both models over the same calibration audio, forwarded in the same
  pieces (goal <= 1.15), each
  ratio measured within one run, for ``--repeat`` runs: every run's ratio, their median and range (min-max);
- whether every scrambled permutation was recovered (b = a function-preserving scramble of a);
- LAP time per group (in the merge, and on random correlation matrices: the worst case);
- peak RSS of a merge with N and 10N calibration clips, each in its own subprocess (its own VmHWM), ``--repeat`` times
  (goals: <= 2.4 GB, flat within 5%);
- the effect of the per-site frame subsample: agreement with all-frame permutations on a noisy pair;
- the effect of float32 statistics accumulators against float64 ones: scrambled pair (must be identical)
  and noisy pair (share of units assigned alike);
- with ``--ranks N``: torchrun scaling, 1 vs N ranks of one thread each (efficiency = ideal / measured wall time).

    python tools/bench_merge.py                       # base size, 128 clips x 5 s (~10 min on 2 cores)
    python tools/bench_merge.py --tiny --clips 8 --seconds 1 --rss-clips 2 --effect-clips 4   # smoke run
    python tools/bench_merge.py --ranks 2 --skip-rss --skip-effect   # adds 2-rank torchrun scaling on CPU
    python tools/bench_merge.py --skip-ratio --skip-effect             # peak RSS only (N and 10N clips)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from upstream_merged.models.hubert import load_hubert_family  # noqa: E402
from upstream_merged.core.memory import own_peak_rss  # noqa: E402
from upstream_merged.core.staggered import half_the_threads_each  # noqa: E402
from upstream_merged.permutation.apply import apply_permutations, invert_all, random_permutations  # noqa: E402
from upstream_merged.permutation.audio import list_clips, load_clip  # noqa: E402
from upstream_merged.permutation.calibration import forward_chunks  # noqa: E402
from upstream_merged.upstream.hubert import hubert_model_input  # noqa: E402
from upstream_merged.permutation.merge import align, build  # noqa: E402
from upstream_merged.permutation.placement import resolve_batch_seconds, resolve_device  # noqa: E402
from upstream_merged.permutation.recipe import Calibration  # noqa: E402
from upstream_merged.permutation.spec import spec_for_model  # noqa: E402
from upstream_merged.recipe import parse_recipe  # noqa: E402
from upstream_merged.tiny import randomize_  # noqa: E402
from upstream_merged.tiny.hubert import TINY_HUBERT, write_hubert_dir  # noqa: E402

COMPONENTS = ("cnn", "ffn", "attn")


def make_models(root: Path, tiny: bool) -> tuple[Path, Path, Path, dict]:
    """Random a; b = a scrambled (function-preserving); b_noisy = b plus weight noise. Saved as HF dirs."""
    from transformers import HubertConfig, HubertModel

    config = HubertConfig(**(TINY_HUBERT if tiny else {}), layerdrop=0.0, apply_spec_augment=False)
    torch.manual_seed(0)
    a = randomize_(HubertModel(config), 0).eval()
    spec = spec_for_model(a)
    perms = random_permutations(spec, spec.select(COMPONENTS), torch.Generator().manual_seed(1))
    state = apply_permutations(a.state_dict(), spec, perms)
    write_hubert_dir(root / "a", a)
    b = HubertModel(config)
    b.load_state_dict(state)
    write_hubert_dir(root / "b", b)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():  # partial correlations: what the frame subsample can actually get wrong
        for tensor in b.state_dict().values():
            if tensor.is_floating_point() and tensor.numel() > 1:
                tensor.add_(0.5 * tensor.std() * torch.randn(tensor.shape, generator=generator))
    write_hubert_dir(root / "b_noisy", b)
    params = sum(p.numel() for p in a.parameters())
    return root / "a", root / "b", root / "b_noisy", {"perms": invert_all(perms), "params": params}


def calibration(args, clips: int, fps, cnn_fps="default", statistics: str = "") -> dict:
    """The recipe's calibration section for this run."""
    return {"synthetic": {"clips": clips, "seconds": args.seconds}, "batch_size": args.batch,
            "frames_per_second": fps, "cnn_frames_per_second": args.cnn_fps if cnn_fps == "default" else cnn_fps,
            "max_batch_seconds": args.max_batch_seconds, "statistics_dtype": statistics or args.statistics,
            "device": args.device}


def bare_forwards(dir_a: Path, dir_b: Path, args, parity: int, device: str = "cpu",
                  side_by_side: bool = False) -> tuple[float, float, float]:
    """Wall and CPU seconds of the forward passes of a and b over every other calibration batch, and audio-making time.

    Each batch is forwarded in the pieces the merge forwards it in (<= ``max_batch_seconds`` of padded audio):
    the ratio then measures what merging adds, not a difference of batching (one 5 s clip per forward is
    about 10% cheaper than whole 16-clip batches here). ``side_by_side``: a and b forward at the same time,
    each on half the torch threads, as the merge's calibration pass runs them on a CPU.
    """
    encoders = [load_hubert_family(dir_a), load_hubert_family(dir_b)]
    for encoder in encoders:
        encoder.model.to(device)
    refs = list_clips(Calibration(**calibration(args, args.clips, args.fps)), seed=0)
    wall = cpu = audio = 0.0

    def forward(encoder, inputs, mask) -> None:
        with torch.inference_mode():  # a thread-local switch
            encoder.model(inputs, attention_mask=mask)

    with half_the_threads_each(2) if side_by_side else nullcontext() as pool:
        for start in range(parity * args.batch, len(refs), 2 * args.batch):
            began = time.perf_counter()
            waves = [torch.from_numpy(load_clip(ref, 10.0)[0]).to(device) for ref in refs[start:start + args.batch]]
            audio += time.perf_counter() - began
            for chunk in forward_chunks([len(w) for w in waves], args.max_batch_seconds, encoders[0].sample_rate):
                jobs = [(encoder, *hubert_model_input([waves[i] for i in chunk], encoder.normalize)) for encoder in encoders]
                began, began_cpu = time.perf_counter(), time.process_time()
                if pool is None:
                    for job in jobs:
                        forward(*job)
                else:
                    for future in [pool.submit(forward, *job) for job in jobs]:
                        future.result()
                if device != "cpu":
                    torch.cuda.synchronize()
                wall += time.perf_counter() - began
                cpu += time.process_time() - began_cpu
    return wall, cpu, audio


def merge_once(dir_a: Path, dir_b: Path, out: Path, args, clips: int) -> tuple[float, dict]:
    """Wall time of a full merge (load, calibrate, match, permute, interpolate, write) and its report."""
    recipe = parse_recipe({"method": "permutation", "sources": {"a": str(dir_a), "b": str(dir_b)},
                           "preset": "cnn_ffn_attn", "alpha": 0.5, "calibration": calibration(args, clips, args.fps)})
    began, began_cpu = time.perf_counter(), time.process_time()
    timings: dict = {}
    build(recipe, out, progress=False, timings=timings)
    report = json.loads((out / "merge_report.json").read_text())
    report["seconds"] = timings  # timings stay out of merge_report.json (rebuilds are byte-identical)
    for name, row in report["groups"].items():
        row["lap_seconds"] = timings["lap_seconds"][name]
    report["cpu_seconds"] = time.process_time() - began_cpu
    return time.perf_counter() - began, report


def ratio_run(dir_a: Path, dir_b: Path, out: Path, args) -> dict:
    """One ratio measurement: half of the bare forwards (even batches) before the merge, half (odd batches) after.

    The box is shared: interleaving makes slow drifts in other processes' load hit both sides alike.
    """
    before = bare_forwards(dir_a, dir_b, args, parity=0)
    before_side = bare_forwards(dir_a, dir_b, args, parity=0, side_by_side=True) if args.side_by_side_baseline else None
    wall, report = merge_once(dir_a, dir_b, out, args, args.clips)
    after = bare_forwards(dir_a, dir_b, args, parity=1)
    forward, forward_cpu = before[0] + after[0], before[1] + after[1]
    run = {"wall": wall, "forward": forward, "before": before[0], "after": after[0], "audio": before[2] + after[2],
           "ratio_wall": wall / forward, "ratio_cpu": report["cpu_seconds"] / forward_cpu, "report": report}
    if before_side is not None:
        after_side = bare_forwards(dir_a, dir_b, args, parity=1, side_by_side=True)
        run["forward_side"] = before_side[0] + after_side[0]
        run["ratio_side"] = wall / run["forward_side"]
    return run


def median_and_range(values) -> str:
    """``median (range min-max)`` of a list of ratios."""
    return f"{float(np.median(values)):.3f} (range {min(values):.3f}-{max(values):.3f})"


def print_ratios(runs) -> None:
    """Each run's merge / bare-forward ratios (wall and CPU), then their median and range."""
    for number, run in enumerate(runs, 1):
        seconds = run["report"]["seconds"]
        print(f"run {number}: bare forwards of a and b {run['forward']:.1f} s ({run['before']:.1f} s before the merge, "
              f"{run['after']:.1f} s after; making the audio: {run['audio']:.1f} s more); merge {run['wall']:.1f} s "
              f"(calibration {seconds['calibration']:.1f}, matching {seconds['matching']:.1f}, load/permute/interpolate/"
              f"write {run['wall'] - seconds['calibration'] - seconds['matching']:.1f}); ratio {run['ratio_wall']:.3f} wall, "
              f"{run['ratio_cpu']:.3f} CPU time")
    print(f"ratio merge / bare forwards, median of {len(runs)} run(s): {median_and_range([r['ratio_wall'] for r in runs])} "
          f"wall, {median_and_range([r['ratio_cpu'] for r in runs])} CPU time (goal <= 1.15)")
    if all("ratio_side" in run for run in runs):  # the stricter baseline: the bare forwards in the merge's own schedule
        side = ", ".join(f"{run['forward_side']:.1f}" for run in runs)
        print(f"bare forwards of a and b side by side (half the threads each, as the merge runs them on a CPU): "
              f"{side} s; ratio merge / those, median of "
              f"{len(runs)} run(s): {median_and_range([run['ratio_side'] for run in runs])} wall (what the statistics, "
              f"loading, matching and writing add)")


def lap_worst_case(tiny: bool) -> dict:
    """LAP seconds on random correlation-like matrices of each group shape."""
    from upstream_merged.core.assignment import solve, solve_blocks

    hidden, ffn, conv, heads, pos_groups = (32, 64, 16, 4, 4) if tiny else (768, 3072, 512, 12, 16)
    generator = torch.Generator().manual_seed(5)
    timings = {}
    for label, size in ((f"ffn {ffn}", ffn), (f"cnn {conv}", conv)):
        matrix = torch.rand(size, size, generator=generator, dtype=torch.float64)
        began = time.perf_counter()
        solve(matrix)
        timings[label] = time.perf_counter() - began
    for label, block, count in ((f"attn {hidden} ({heads} heads, q/k + v/out)", hidden // heads, 2),
                                (f"residual {hidden} ({pos_groups} conv groups)", hidden // pos_groups, 1)):
        matrices = [torch.rand(hidden, hidden, generator=generator, dtype=torch.float64) for _ in range(count)]
        began = time.perf_counter()
        solve_blocks(matrices, block)
        timings[label] = time.perf_counter() - began
    return timings


def rss_child(args) -> None:
    """(subprocess) run one merge and print its peak RSS in bytes as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        merge_once(Path(args.rss_child[0]), Path(args.rss_child[1]), Path(tmp) / "out", args, args.clips)
    print(json.dumps({"peak_rss": own_peak_rss()}))


def peak_rss(dir_a: Path, dir_b: Path, args, clips: int) -> int:
    """Peak RSS of a merge with ``clips`` calibration clips, measured in a fresh subprocess."""
    command = [sys.executable, __file__, "--rss-child", str(dir_a), str(dir_b), "--clips", str(clips),
               "--seconds", str(args.seconds), "--batch", str(args.batch), "--fps", str(args.fps),
               "--cnn-fps", str(args.cnn_fps), "--max-batch-seconds", str(args.max_batch_seconds),
               "--statistics", args.statistics, "--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss"])


def subsample_effect(dir_a: Path, dir_noisy: Path, args) -> dict:
    """Permutations from subsampled vs all-frame statistics on a noisy pair: agreement and matched correlation."""
    encoders = [load_hubert_family(dir_a), load_hubert_family(dir_noisy)]
    runs = {}
    for label, fps, cnn_fps in (("subsampled", args.fps, args.cnn_fps), ("all_frames", None, None)):
        began = time.perf_counter()
        runs[label] = align(*encoders, COMPONENTS, Calibration(**calibration(args, args.effect_clips, fps, cnn_fps)),
                            seed=0, progress=False)
        runs[label].seconds["wall"] = time.perf_counter() - began
    sub, full = runs["subsampled"], runs["all_frames"]
    out = {"seconds": {k: round(v.seconds["calibration"], 1) for k, v in runs.items()}, "components": {}}
    for component in COMPONENTS:
        names = [m.name for m in full.matches if m.component == component]
        units = sum(full.perms[n].numel() for n in names)
        same = sum(int((sub.perms[n] == full.perms[n]).sum()) for n in names)
        corr = full.correlations  # judge both assignments on the all-frame statistics
        achieved = np.mean([float(corr[n][torch.arange(corr[n].shape[0]), sub.perms[n]].mean()) for n in names])
        optimal = np.mean([float(corr[n][torch.arange(corr[n].shape[0]), full.perms[n]].mean()) for n in names])
        out["components"][component] = {"agreement": same / units, "corr_subsampled": achieved, "corr_all_frames": optimal}
    return out


def torchrun_merge(dir_a: Path, dir_b: Path, out: Path, args, ranks: int) -> tuple[float, float]:
    """Wall seconds of ``torchrun --nproc_per_node ranks -m upstream_merged merge`` (1 thread per rank) and its calibration seconds."""
    import yaml

    recipe = out.parent / f"recipe_{ranks}.yaml"
    recipe.write_text(yaml.safe_dump({"method": "permutation", "sources": {"a": str(dir_a), "b": str(dir_b)},
                                      "preset": "cnn_ffn_attn", "alpha": 0.5,
                                      "calibration": dict(calibration(args, args.clips, args.fps), device="cpu")}))
    command = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", str(ranks),
               "-m", "upstream_merged", "merge", str(recipe), str(out), "--force"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"torchrun with {ranks} rank(s) failed:\n{done.stderr[-2000:]}")
    found = re.search(r"calibration ([0-9.]+) s", done.stderr)
    return wall, float(found.group(1)) if found else float("nan")


def gpu_figures(dir_a: Path, dir_b: Path, root: Path, args) -> None:
    """On CUDA: merge / bare forwards and calibration clips per second of a merge calibrated on the GPU."""
    device_args = argparse.Namespace(**{**vars(args), "device": "cuda"})
    forward = sum(bare_forwards(dir_a, dir_b, device_args, parity, device="cuda")[0] for parity in (0, 1))
    wall, report = merge_once(dir_a, dir_b, root / "merged_gpu", device_args, args.clips)
    calibration_seconds = report["seconds"]["calibration"]
    print(f"GPU ({torch.cuda.get_device_name()}): merge {wall:.1f} s, bare forwards {forward:.1f} s, ratio "
          f"{wall / forward:.3f}; calibration {args.clips / calibration_seconds:.1f} clips/s")


def scaling(dir_a: Path, dir_b: Path, root: Path, args) -> None:
    """Print 1-rank vs N-rank torchrun merges (median of ``args.repeat`` runs each) and the scaling efficiency."""
    runs: dict = {}
    for ranks in (1, args.ranks):
        runs[ranks] = [torchrun_merge(dir_a, dir_b, root / f"torchrun_{ranks}", args, ranks) for _ in range(args.repeat)]
    median = {r: (float(np.median([w for w, _ in v])), float(np.median([c for _, c in v]))) for r, v in runs.items()}
    (one_wall, one_cal), (n_wall, n_cal) = median[1], median[args.ranks]
    spread = {r: f"{min(w for w, _ in v):.1f}-{max(w for w, _ in v):.1f}" for r, v in runs.items()}
    print(f"torchrun, 1 thread per rank, median of {args.repeat}: 1 rank {one_wall:.1f} s (range {spread[1]}; calibration "
          f"{one_cal:.1f} s), {args.ranks} ranks {n_wall:.1f} s (range {spread[args.ranks]}; calibration {n_cal:.1f} s)")
    print(f"  scaling efficiency (ideal / measured wall): whole merge {one_wall / args.ranks / n_wall:.2f}, "
          f"calibration pass {one_cal / args.ranks / n_cal:.2f} (goal >= 0.9; loading, matching and writing stay serial)")


def statistics_effect(dir_a: Path, dir_b: Path, dir_noisy: Path, args) -> dict:
    """float32 vs float64 accumulators: permutations on the scrambled pair and unit agreement on the noisy pair."""
    out = {}
    for label, partner in (("scrambled", dir_b), ("noisy", dir_noisy)):
        encoders = [load_hubert_family(dir_a), load_hubert_family(partner)]
        runs = {dtype: align(*encoders, COMPONENTS, Calibration(**calibration(args, args.effect_clips, args.fps,
                                                                               statistics=dtype)), seed=0, progress=False)
                for dtype in ("float32", "float64")}
        names = list(runs["float64"].perms)
        units = sum(runs["float64"].perms[n].numel() for n in names)
        same = sum(int((runs["float32"].perms[n] == runs["float64"].perms[n]).sum()) for n in names)
        identical = sum(torch.equal(runs["float32"].perms[n], runs["float64"].perms[n]) for n in names)
        out[label] = {"agreement": same / units, "groups_identical": identical, "groups": len(names)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = {name: field.default for name, field in Calibration.model_fields.items()}  # the bench times the recipe defaults
    parser.add_argument("--clips", type=int, default=128, help="calibration clips of the ratio run")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per synthetic clip")
    parser.add_argument("--batch", type=int, default=default["batch_size"])
    parser.add_argument("--fps", type=float, default=default["frames_per_second"],
                        help="frames kept per transformer site per second of audio")
    parser.add_argument("--cnn-fps", type=float, default=default["cnn_frames_per_second"],
                        help="frames kept per CNN site per second of audio")
    parser.add_argument("--max-batch-seconds", type=lambda text: text if text == "auto" else float(text),
                        default=default["max_batch_seconds"],
                        help="padded audio per forward in the merge (auto: the recipe default on --device)")
    parser.add_argument("--rss-clips", type=int, default=8, help="N of the RSS comparison (N vs 10N clips)")
    parser.add_argument("--effect-clips", type=int, default=16, help="clips of the subsample-effect comparison")
    parser.add_argument("--tiny", action="store_true", help="tiny models (smoke run)")
    parser.add_argument("--statistics", choices=("float32", "float64"), default="float32",
                        help="dtype of the cross-moment accumulators in the timed merge")
    parser.add_argument("--device", default="cpu", help="device of the calibration pass (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--skip-ratio", action="store_true",
                        help="skip the merge / bare-forwards ratio (and the recovery and LAP lines that use its merge)")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-effect", action="store_true")
    parser.add_argument("--ranks", type=int, default=0, help="also time torchrun merges with 1 and this many CPU ranks")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per timing and per RSS size: each run's figure, the median and the range are printed")
    parser.add_argument("--side-by-side-baseline", action="store_true",
                        help="also time the bare forwards of a and b side by side, as the merge's CPU pass runs them")
    parser.add_argument("--rss-child", nargs=2, metavar=("DIR_A", "DIR_B"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    logging.basicConfig(level=logging.WARNING)
    if args.max_batch_seconds == "auto":  # what the merge resolves it to on this device (5 s on the CPU)
        args.max_batch_seconds = resolve_batch_seconds("auto", resolve_device(args.device))
    if args.rss_child:
        rss_child(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dir_a, dir_b, dir_noisy, info = make_models(root, args.tiny)
        size = "tiny" if args.tiny else "HuBERT-base-sized"
        print(f"bench_merge: {size} random models ({info['params'] / 1e6:.1f}M params), {args.clips} clips x "
              f"{args.seconds} s, batch {args.batch} (forwards of <= {args.max_batch_seconds:g} s), {args.fps:g} frames/s per "
              f"transformer site and {args.cnn_fps:g} per CNN site, {torch.get_num_threads()} threads")

        if not args.skip_ratio:
            runs = [ratio_run(dir_a, dir_b, root / "merged", args) for _ in range(args.repeat)]
            print_ratios(runs)
            report = runs[0]["report"]

            from safetensors.torch import load_file

            found = load_file(str(root / "merged" / "permutations.safetensors"))
            recovered = [n for n, p in info["perms"].items() if torch.equal(found.get(n, torch.empty(0)), p)]
            print(f"scrambled permutations recovered: {len(recovered)}/{len(info['perms'])} groups")
            merged = load_hubert_family(root / "merged").model.state_dict()
            original = load_hubert_family(dir_a).model.state_dict()
            print(f"max |merged - a| at alpha 0.5: {max(float((merged[k] - v).abs().max()) for k, v in original.items()):.2e}")
            del merged, original

            by_component: dict = {}
            for row in report["groups"].values():
                by_component.setdefault(row["component"], []).append(row["lap_seconds"])
            laps = ", ".join(f"{c} {np.mean(v):.3f} s (x{len(v)})" for c, v in by_component.items())
            print(f"matching time per group in the merge (correlation + LAP, scrambled pair, thread pool): {laps}")
            worst = ", ".join(f"{k}: {v:.3f} s" for k, v in lap_worst_case(args.tiny).items())
            print(f"LAP time per group on random correlations (worst case): {worst}")

        if torch.cuda.is_available():
            gpu_figures(dir_a, dir_b, root, args)
        if args.ranks > 1:
            scaling(dir_a, dir_b, root, args)
        if not args.skip_rss:
            small, large = [], []
            for _ in range(args.repeat):  # alternated, so drifts of the box hit both sizes alike
                small.append(peak_rss(dir_a, dir_b, args, args.rss_clips) / 1e9)
                large.append(peak_rss(dir_a, dir_b, args, 10 * args.rss_clips) / 1e9)
            for clips, values in ((args.rss_clips, small), (10 * args.rss_clips, large)):
                print(f"peak RSS, {clips} clips, each run (GB): {', '.join(f'{v:.3f}' for v in values)}")
            growth = 100 * (np.median(large) - np.median(small)) / np.median(small)
            print(f"peak RSS, median of {args.repeat} run(s): {args.rss_clips} clips {median_and_range(small)} GB, "
                  f"{10 * args.rss_clips} clips {median_and_range(large)} GB; {growth:+.1f}% (goals: <= 2.4 GB, flat within 5%)")
        if not args.skip_effect:
            effect = subsample_effect(dir_a, dir_noisy, args)
            print(f"frame subsample ({args.fps:g}/s transformer, {args.cnn_fps:g}/s CNN) vs all frames, noisy pair, {args.effect_clips} clips: "
                  f"calibration {effect['seconds']['subsampled']} s vs {effect['seconds']['all_frames']} s")
            for component, row in effect["components"].items():
                print(f"  {component}: {100 * row['agreement']:.1f}% of units assigned alike; mean matched correlation "
                      f"(all-frame stats) {row['corr_subsampled']:.4f} vs {row['corr_all_frames']:.4f} optimal")
            dtype_effect = statistics_effect(dir_a, dir_b, dir_noisy, args)
            print(f"float32 vs float64 statistics accumulators, {args.effect_clips} clips:")
            for label, row in dtype_effect.items():
                print(f"  {label} pair: {row['groups_identical']}/{row['groups']} groups identical, "
                      f"{100 * row['agreement']:.2f}% of units assigned alike")


if __name__ == "__main__":
    main()
