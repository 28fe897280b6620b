"""Re-save a BEATs .pt that needs full unpickling as a weights-only one: ``python -m upstream_merged.models.beats_convert IN OUT``.

Running this is the explicit opt-in: IN is unpickled in full (which can run code stored in it), so
convert only files you trust. OUT holds ``{"cfg": plain dict, "model": state dict}`` (plus a
plain ``label_dict`` if IN has one) and loads with ``torch.load(weights_only=True)``, which is how
the ``beats`` entry and MAM read BEATs checkpoints.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import List, Optional

import torch

from upstream_merged.core.atomic import write_atomically
from upstream_merged.models.beats import BEATsConfig, read_beats_checkpoint
from upstream_merged.models.checkpoint import CheckpointError, torch_load_weights_only

logger = logging.getLogger(__name__)


def convert_beats_checkpoint(source: Path, out: Path) -> Path:
    """Write ``out`` (weights-only loadable) from ``source`` (fully unpickled); ``out`` must not exist."""
    source, out = Path(source), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another output path")
    cfg, state = read_beats_checkpoint(source, allow_pickle=True)
    BEATsConfig.from_dict(cfg, source=str(source))  # refuse a cfg the loader would refuse, before writing
    blob = {"cfg": cfg, "model": {k: v for k, v in state.items()}}

    def save_and_check(temp: Path) -> None:
        torch.save(blob, temp)
        torch_load_weights_only(temp)  # proves the result needs no unpickling

    return write_atomically(out, save_and_check)


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="BEATs .pt that needs full unpickling (a file you trust)")
    parser.add_argument("out", type=Path, help="new .pt to write (weights-only loadable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        convert_beats_checkpoint(args.source, args.out)
    except (CheckpointError, FileExistsError) as err:
        parser.exit(2, f"error: {err}\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
