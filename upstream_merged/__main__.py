"""Command line: ``python -m upstream_merged {merge,entries,install-hook,tiny}``."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

logger = logging.getLogger("upstream_merged")


def _cmd_merge(args: argparse.Namespace) -> int:
    from upstream_merged.cache import build_atomically
    from upstream_merged.recipe import load_recipe, methods

    recipe = load_recipe(args.recipe)
    if args.seed is not None:
        recipe = recipe.model_copy(update={"seed": args.seed})
    spec = methods()[recipe.method]
    if args.dry_run:
        print(spec.plan(recipe))
        return 0
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        raise SystemExit(f"error: output {out} exists and is not empty; pass --force to overwrite it")
    recipe_text = Path(args.recipe).read_text()
    build_atomically(out, lambda tmp: spec.build(recipe, tmp, recipe_text=recipe_text, progress=not args.quiet), refresh=True)
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
    from upstream_merged.testing.tiny import materialize_tiny

    print(materialize_tiny(args.source))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m upstream_merged", description=__doc__)
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbosity.add_argument("--quiet", action="store_true", help="warnings only, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    merge = sub.add_parser("merge", help="build a merged/fused model from a recipe into OUT")
    merge.add_argument("recipe", help="recipe YAML")
    merge.add_argument("out", help="output directory (a Hugging Face model dir plus reports)")
    merge.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    merge.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    merge.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    merge.set_defaults(func=_cmd_merge)

    sub.add_parser("entries", help="list the plugin's hub entries").set_defaults(func=_cmd_entries)

    hook = sub.add_parser("install-hook", help="write upstream_merged.pth into site-packages")
    hook.add_argument("--site-packages", type=Path, default=None)
    hook.set_defaults(func=_cmd_install_hook)

    tiny = sub.add_parser("tiny", help="write an embedded tiny model (tiny:<arch>[:seed]) and print its dir")
    tiny.add_argument("source")
    tiny.set_defaults(func=_cmd_tiny)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``python -m upstream_merged`` and ``upstream-merged``."""
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
