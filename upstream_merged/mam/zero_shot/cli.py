"""``python -m upstream_merged mam-eval``: argument parsing only; the work is in run.py."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, List, Optional


def _floats(text: str) -> List[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _list(text: str) -> List[str]:
    return [x.strip() for x in text.split("+") if x.strip()]


def add_parser(sub, add_command: Callable) -> None:
    """Add the ``mam-eval`` subcommand through ``__main__.add_command``."""
    cmd = add_command(sub, "mam-eval", cmd_mam_eval,
                      "zero-shot MAM: λ x source x layer subset x component sweep on a task-fine-tuned target "
                      "(WER/CER on LJ Speech / VCTK, accuracy on ESC-50), no training; resumable")
    cmd.add_argument("grid", type=Path, help="zero-shot grid YAML, or a `method: mam` recipe (its target and source)")
    cmd.add_argument("--out", type=Path, default=None, help="output directory (default: the grid's output_dir)")
    cmd.add_argument("--lambdas", type=_floats, default=None, help="e.g. 0,0.01,0.025,0.05,0.1,0.2 (the default)")
    cmd.add_argument("--sources", type=_list, default=None, help="source models joined by '+' (HF ids, dirs, tiny:...)")
    cmd.add_argument("--layers", type=_list, default=None, dest="layer_subsets",
                     help="layer subsets joined by '+': all, lower, upper, third1..3, or lists like 0,1,2 / 0-5")
    cmd.add_argument("--components", type=_list, default=None, help="components joined by '+', e.g. q+k+v+qkv")
    data = cmd.add_argument_group("datasets (replace the grid's datasets when any is given)")
    data.add_argument("--ljspeech", type=Path, default=None, help="LJ Speech root (metadata.csv, wavs/)")
    data.add_argument("--vctk", type=Path, default=None, help="VCTK root (txt/, wav48_silence_trimmed/)")
    data.add_argument("--vctk-mic", choices=["mic1", "mic2"], default="mic1")
    data.add_argument("--esc50", type=Path, default=None, help="ESC-50 root (meta/esc50.csv, audio/)")
    data.add_argument("--esc50-folds", type=lambda t: [int(x) for x in t.split(",")], default=None,
                      help="folds evaluated, e.g. 1,2 (default: all five)")
    data.add_argument("--limit", type=int, default=None, help="first N items of each dataset")


def _datasets(args: argparse.Namespace) -> Optional[list]:
    found = []
    if args.ljspeech:
        found.append({"name": "ljspeech", "kind": "ljspeech", "root": str(args.ljspeech.resolve()), "limit": args.limit})
    if args.vctk:
        found.append({"name": f"vctk_{args.vctk_mic}", "kind": "vctk", "root": str(args.vctk.resolve()),
                      "mic": args.vctk_mic, "limit": args.limit})
    if args.esc50:
        found.append({"name": "esc50", "kind": "esc50", "root": str(args.esc50.resolve()), "folds": args.esc50_folds,
                      "limit": args.limit})
    return found or None


def cmd_mam_eval(args: argparse.Namespace) -> int:
    """Run (or resume) a zero-shot sweep and print where its tables are."""
    from upstream_merged.mam.zero_shot.run import load_grid, run_zero_shot

    grid = load_grid(args.grid, lambdas=args.lambdas, sources=args.sources, layer_subsets=args.layer_subsets,
                     components=args.components, datasets=_datasets(args))
    result = run_zero_shot(grid, args.out, progress=not args.quiet)
    print(f"{result.evaluated} cells evaluated, {result.skipped} finished before")
    for path in result.files:
        print(f"wrote {path}")
    return 0
