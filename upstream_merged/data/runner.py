"""One command line for every dataset layout: argparse from a layout's declaration, output checks, summary print."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from upstream_merged.data.shared import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Option:
    """One ``parser.add_argument(*flags, **settings)`` call of a layout's command line."""

    flags: Tuple[str, ...]
    settings: Dict[str, Any] = field(default_factory=dict)


def option(*flags: str, **settings: Any) -> Option:
    """Declare a command-line option exactly as ``argparse.add_argument`` takes it."""
    return Option(tuple(flags), settings)


def json_report(args: argparse.Namespace, result: Any) -> List[str]:
    """The default success print: what the writer returned, as one JSON line."""
    return [json.dumps(result)]


@dataclass(frozen=True)
class RecipeOverrides:
    """The run_downstream.py -o string pointing a stock recipe at OUT: ``config.downstream_expert.`` + each
    template, ``{out}`` standing for OUT's absolute path, joined by ``,,``."""

    templates: Tuple[str, ...]

    def __call__(self, out: Path) -> str:
        """The -o string for the dataset in ``out``."""
        return ",,".join(f"config.downstream_expert.{t.format(out=Path(out).resolve())}" for t in self.templates)


def recipe_report(flags: str, overrides: Callable[[Path], str]) -> Callable[[argparse.Namespace, Any], List[str]]:
    """A success print of the ``run_downstream.py`` line that points a stock recipe at OUT."""
    return lambda args, result: [f"run_downstream.py {flags} -o \"{overrides(args.out)}\""]


@dataclass(frozen=True)
class Layout:
    """A dataset layout's command: its options and the function that writes OUT from the parsed arguments.

    ``check`` returns a usage error (or None) before anything is written; ``report`` gives the lines
    printed on success; for a profile in ``summary_profiles``, ``--summary PATH`` also receives what
    ``write`` returned, with the task, profile, seed and arguments; ``force`` lets ``--force`` replace a
    non-empty OUT (the writer then owns the replacement).
    """

    name: str
    description: str
    options: Tuple[Option, ...]
    write: Callable[[argparse.Namespace], Any]
    check: Optional[Callable[[argparse.Namespace], Optional[str]]] = None
    report: Callable[[argparse.Namespace, Any], Iterable[str]] = json_report
    summary_profiles: Tuple[str, ...] = ()
    out_help: str = "output directory (must be empty or absent)"
    force: bool = False

    @property
    def help(self) -> str:
        """One line for ``data --help``: the first line of the description."""
        return self.description.strip().splitlines()[0]

    def parser(self, prog: Optional[str] = None) -> argparse.ArgumentParser:
        """The argparse parser of this layout (OUT first, then the declared options)."""
        parser = argparse.ArgumentParser(prog=prog, description=self.description,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("out", type=Path, help=self.out_help)
        for declared in self.options:
            parser.add_argument(*declared.flags, **declared.settings)
        return parser

    def main(self, argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
        """Parse ``argv`` (default: sys.argv[1:]) and write the dataset; 0 on success, 2 on a refused or failed run."""
        return run(self, argv, prog)


def _not_empty(out: Path) -> bool:
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def run(layout: Layout, argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Write ``layout`` into OUT as its command line asks: usage errors exit 2, a refused or failed run returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = layout.parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    problem = layout.check(args) if layout.check else None
    if problem:
        parser.error(problem)
    if _not_empty(args.out) and not (layout.force and args.force):
        hint = "pass --force to replace it" if layout.force else "remove it or choose another"
        print(f"error: output directory {args.out} is not empty; {hint}", file=sys.stderr)
        return 2
    try:
        result = layout.write(args)
    except ValueError as err:  # a setting the writer refuses before it writes
        parser.error(str(err))
    except (FileExistsError, RuntimeError) as err:  # incl. a missing program (ToolMissingError)
        print(f"error: {err}", file=sys.stderr)
        return 2
    if getattr(args, "summary", None) and getattr(args, "profile", None) in layout.summary_profiles:
        write_json(args.summary, dict(result, task=layout.name, profile=args.profile, seed=args.seed,
                                      args=[str(a) for a in argv]))
    for line in layout.report(args, result):
        print(line)
    return 0


def shim(module_name: str, layout: str) -> None:
    """What tools/make_<layout>.py does: run the layout as a script, or stand for its module when imported."""
    import importlib

    module = importlib.import_module(f"upstream_merged.data.{layout}")
    if module_name == "__main__":
        sys.exit(module.LAYOUT.main())
    sys.modules[module_name] = module


WORKERS = option("--workers", type=int, default=2, help="parallel synthesis jobs")
QUIET = option("--quiet", action="store_true", help="no progress bars")


def add_parser(sub, add_command) -> None:
    """Register ``data LAYOUT OUT ...`` on the CLI; ``data --help`` lists the layouts, ``data LAYOUT --help`` its options."""
    from upstream_merged.data import LAYOUT_NAMES, layouts

    command = add_command(sub, "data", lambda args: layouts()[args.layout].main(args.layout_args, prog=f"python -m upstream_merged data {args.layout}"),
                          "write a synthetic dataset in the on-disk layout a stock s3prl recipe reads")
    command.add_argument("layout", choices=LAYOUT_NAMES, metavar="LAYOUT", help="one of the layouts listed below")
    command.add_argument("layout_args", nargs=argparse.REMAINDER, metavar="OUT ...",
                         help="the output directory and the layout's options (data LAYOUT --help)")
    usage = command.format_help  # the list imports every layout: only when help is asked for
    command.format_help = lambda: usage() + "\nlayouts:\n" + "".join(
        f"  {name:18s}{layout.help}\n" for name, layout in layouts().items())
