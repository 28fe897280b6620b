"""Command line: ``python -m upstream_merged {merge,entries,install-hook,tiny,check-sources,data,...}``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, List, Optional

logger = logging.getLogger("upstream_merged")


def _cmd_merge(args: argparse.Namespace) -> int:
    from upstream_merged.cache import build_atomically
    from upstream_merged.recipe import load_recipe, methods, recipe_yaml

    recipe = load_recipe(args.recipe)
    if args.seed is not None:
        recipe = recipe.model_copy(update={"seed": args.seed})
    recipe = recipe.effective()  # what is built is what OUT/recipe.yaml records
    spec = methods()[recipe.method]
    from upstream_merged.permutation.distributed import sharded_merge, torchrun_world

    world = torchrun_world()
    if recipe.method != "permutation" and (args.device is not None or world > 1):
        raise SystemExit(f"error: --device and torchrun apply to permutation merges (their calibration pass); "
                         f"recipe {args.recipe} is a {recipe.method!r} recipe: run it with plain python -m upstream_merged")
    if args.dry_run:
        print(spec.plan(recipe))
        return 0
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise SystemExit(f"error: output {out} exists and is not empty; pass --force to overwrite it")
    if world > 1:  # torchrun: calibration sharded across ranks, rank 0 writes OUT
        if sharded_merge(recipe, out, device=args.device, progress=not args.quiet) is not None:
            print(f"wrote {out}")
        return 0
    if recipe.method == "permutation":
        from upstream_merged.permutation.merge import build

        build_atomically(out, lambda tmp: build(recipe, tmp, progress=not args.quiet, device=args.device), refresh=True)
    else:
        text = recipe_yaml(recipe)
        build_atomically(out, lambda tmp: spec.build(recipe, tmp, recipe_text=text, progress=not args.quiet), refresh=True)
    print(f"wrote {out}")
    return 0


def _cmd_entries(args: argparse.Namespace) -> int:
    from upstream_merged.registry import downstream_tasks, entries

    for name, fn in sorted(entries().items()):
        print(f"{name:40s} {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
    for task in downstream_tasks():
        print(f"downstream task: {task}")
    return 0


def _cmd_install_hook(args: argparse.Namespace) -> int:
    from upstream_merged.install_hook import install_pth

    print(install_pth(args.site_packages))
    return 0


def _cmd_tiny(args: argparse.Namespace) -> int:
    from upstream_merged.tiny import materialize_tiny

    print(materialize_tiny(args.source))
    return 0


def _global_flags(parser: argparse.ArgumentParser, default) -> None:
    """-v / --quiet; on subcommands with ``default=SUPPRESS`` so they never undo what was given before the subcommand."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logging")
    parser.add_argument("--quiet", action="store_true", default=default, help="warnings only, no progress bars")


def add_command(sub, name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``; it accepts the global flags after its name too."""
    command = sub.add_parser(name, help=help, description=help)
    _global_flags(command, argparse.SUPPRESS)
    command.set_defaults(func=func)
    return command


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m upstream_merged", description=__doc__)
    _global_flags(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)

    merge = add_command(sub, "merge", _cmd_merge, "build a merged/fused model from a recipe into OUT")
    merge.add_argument("recipe", help="recipe YAML")
    merge.add_argument("out", help="output directory (a Hugging Face model dir plus reports)")
    merge.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    merge.add_argument("--seed", type=int, default=None, help="override the recipe's seed (recorded in OUT/recipe.yaml)")
    merge.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    merge.add_argument("--device", default=None, choices=None, metavar="{auto,cpu,cuda,cuda:N}",
                       help="where a permutation merge calibrates (default: the recipe's calibration.device, auto = "
                            "CUDA when available; under torchrun cuda/auto = each rank's cuda:LOCAL_RANK); not "
                            "recorded in OUT")

    add_command(sub, "entries", _cmd_entries, "list the plugin's hub entries")

    hook = add_command(sub, "install-hook", _cmd_install_hook, "write upstream_merged.pth into site-packages")
    hook.add_argument("--site-packages", type=Path, default=None)

    tiny = add_command(sub, "tiny", _cmd_tiny, "write an embedded tiny model (tiny:<arch>[:seed]) and print its dir")
    tiny.add_argument("source")

    from upstream_merged.superb.cli import add_parsers as add_superb_commands  # sweep, submit

    add_superb_commands(sub, add_command)
    from upstream_merged.mam.zero_shot.cli import add_parser as add_mam_eval_command  # mam-eval

    add_mam_eval_command(sub, add_command)
    from upstream_merged.check_sources import add_parser as add_check_sources_command  # check-sources

    add_check_sources_command(sub, add_command)
    from upstream_merged.data.runner import add_parser as add_data_command  # data LAYOUT OUT ...

    add_data_command(sub, add_command)
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line; -v and --quiet exclude each other wherever they are given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and --quiet exclude each other; give one of them")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m upstream_merged`` and ``upstream-merged``."""
    args = parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
