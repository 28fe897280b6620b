"""Shared helpers of the dataset layout tests: the command line, a tree's digest."""
import hashlib
import sys
from pathlib import Path

DATA_CLI = [sys.executable, "-m", "upstream_merged", "data"]


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
