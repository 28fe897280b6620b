"""Write the one-line .pth that imports the s3prl hook, for installs (editable ones) that lack it."""
from __future__ import annotations

import sysconfig
from pathlib import Path

PTH_NAME = "upstream_merged.pth"
PTH_LINE = 'import importlib.util as _u; _u.find_spec("upstream_merged") and __import__("upstream_merged._hook")\n'


def site_packages() -> Path:
    """The purelib directory of the running interpreter (the venv's site-packages)."""
    return Path(sysconfig.get_paths()["purelib"])


def install_pth(directory: Path | None = None) -> Path:
    """Write (idempotently) ``upstream_merged.pth`` into site-packages and return its path."""
    target = Path(directory or site_packages()) / PTH_NAME
    if not target.is_file() or target.read_text() != PTH_LINE:
        target.write_text(PTH_LINE)
    return target


def uninstall_pth(directory: Path | None = None) -> None:
    """Remove the hook .pth if present."""
    target = Path(directory or site_packages()) / PTH_NAME
    target.unlink(missing_ok=True)

