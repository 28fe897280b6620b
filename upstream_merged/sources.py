"""Resolve a model source (local directory, Hugging Face id, or embedded tiny model) to a local dir."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from upstream_merged.cache import cache_root  # noqa: F401 (re-exported: the cache's root)

logger = logging.getLogger(__name__)

TINY_PREFIX = "tiny:"
SMALL_PREFIX = "small:"
_WEIGHT_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.pt", "*.txt", "*.model"]
# owner/name, or a legacy canonical id without an owner (bert-base-uncased); never a file name
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".json", ".yaml", ".yml", ".tsv", ".txt", ".wav",
                  ".flac", ".tar", ".gz", ".zip")


class SourceError(FileNotFoundError):
    """A model source could not be found locally and could not be fetched."""


def resolve_source(source: str | os.PathLike, what: str = "model", flag: str = "-k") -> Path:
    """Return a local directory (or file) for ``source``; never substitutes another model.

    ``flag`` tells the user where to put a local copy: a CLI flag such as ``-k`` or a recipe key
    such as ``sources.b:``.

    Accepts an existing path, ``tiny:<arch>[:seed]`` for the embedded tiny models, ``small:hubert`` /
    ``small:mert`` for the shipped small encoders, or a Hugging Face
    repo id, which is taken from the local HF cache or downloaded when the network allows it.
    """
    text = str(source)
    if text.startswith(TINY_PREFIX):
        from upstream_merged.tiny import materialize_tiny

        return materialize_tiny(text)
    if text.startswith(SMALL_PREFIX):  # the small encoders pretrained here, shipped in the package
        from upstream_merged.pretrained import resolve_small

        return resolve_small(text)
    kind = source_kind(text)
    if kind == "path":
        return Path(text).expanduser().resolve()
    if kind == "missing":
        raise SourceError(f"{what}: no such file or directory: {text}")
    return _hf_snapshot(text, what, flag)


def source_kind(source: str | os.PathLike) -> str:
    """How :func:`resolve_source` reads ``source``: tiny, small, path (exists), hub (an HF id) or missing (a path)."""
    text = str(source)
    if text.startswith(TINY_PREFIX):
        return "tiny"
    if text.startswith(SMALL_PREFIX):
        return "small"
    if Path(text).expanduser().exists():
        return "path"
    if text.startswith(("/", ".", "~")) or not _HUB_ID.match(text) or ".." in text or "--" in text \
            or text.lower().endswith(_FILE_SUFFIXES):
        return "missing"
    return "hub"


def _hf_snapshot(repo_id: str, what: str, flag: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_WEIGHT_PATTERNS, local_files_only=True))
    except LocalEntryNotFoundError:  # simply not in the local HF cache: try the network below
        pass
    except Exception as err:  # the cache exists but could not be read: say why, never fall through silently
        raise SourceError(
            f"{what} {repo_id!r}: the local Hugging Face cache could not be read ({type(err).__name__}: "
            f"{_first_line(err)}). Fix the cache (permissions, HF_HOME / HF_HUB_CACHE, a broken snapshot) "
            f"or pass a local copy with {flag} DIR."
        ) from err
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        reason = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    else:
        try:
            logger.info("downloading %s from the Hugging Face hub", repo_id)
            return Path(snapshot_download(repo_id, allow_patterns=_WEIGHT_PATTERNS, etag_timeout=10))
        except Exception as err:  # network errors come in many types; the message below says what to do
            reason = f"download failed ({type(err).__name__}: {_first_line(err)})"
    if flag.startswith("-"):
        how = f"pass it with `{flag} DIR` (or name DIR in the recipe's sources)"
    else:
        how = f"write `{flag} DIR` in the recipe and pass the recipe with -g"
    raise SourceError(
        f"{what} {repo_id!r} is not available: {reason}. Download it elsewhere "
        f"(e.g. `huggingface-cli download {repo_id} --local-dir DIR`), copy DIR here and {how}."
    )


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return lines[0][:160] if lines else "no message"
