"""The small speech (HuBERT-style) and music (MERT-style) encoders pretrained here, shipped in the package.

``small:hubert`` and ``small:mert`` name them as model sources (see upstream_merged.sources); each is
a Hugging Face HubertModel directory. tools/pretrain_small.py reproduces them (docs/pretraining.md);
SHA256SUMS records the digest of every shipped file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict

PREFIX = "small:"
ROOT = Path(__file__).resolve().parent
SHIPPED = {"hubert": "hubert_small", "mert": "mert_small"}  # source name -> directory
SUMS_FILE = ROOT / "SHA256SUMS"


class ShippedModelError(FileNotFoundError):
    """A small:<name> source is unknown or its shipped files are missing."""


def shipped_dir(name: str) -> Path:
    """Directory of the shipped encoder ``name`` (hubert or mert)."""
    if name not in SHIPPED:
        raise ShippedModelError(f"unknown shipped model {PREFIX}{name}; choose one of "
                                f"{', '.join(PREFIX + n for n in SHIPPED)}")
    directory = ROOT / SHIPPED[name]
    if not (directory / "config.json").is_file():
        raise ShippedModelError(f"{directory} has no config.json: the package was installed without its "
                                "pretrained weights (reinstall it; setup.py ships upstream_merged/pretrained/*/*)")
    return directory


def resolve_small(source: str) -> Path:
    """``small:hubert`` / ``small:mert`` -> the shipped directory."""
    return shipped_dir(str(source)[len(PREFIX):])


def recorded_sums() -> Dict[str, str]:
    """SHA256SUMS as {relative path: hex digest} (sha256sum's format, so `sha256sum -c` checks it too)."""
    sums = {}
    for line in SUMS_FILE.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
