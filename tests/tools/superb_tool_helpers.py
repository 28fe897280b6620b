"""Shared helpers for the synthetic SUPERB dataset tool tests: import a tool, hash a tree."""
import hashlib
import importlib
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def tool(name: str):
    """Import tools/<name>.py."""
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module(name)


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
