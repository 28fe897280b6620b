"""Fixes for gaps of the PyPI s3prl 0.4.18 downstreams, applied by the plugin's import hook.

1. voxceleb1's file lists go to our cache, not into site-packages.

s3prl 0.4.18's ``voxceleb1`` dataset pickles its train/dev/test file lists into
``site-packages/s3prl/downstream/voxceleb1/.cache/<split>.pkl`` and reuses them for *any* later data
root (stale lists, writes into site-packages). The hook redirects that directory, per dataset, to
``<plugin cache>/s3prl_file_lists/voxceleb1/<key>/``, the key hashing the data root and the split
file's path and content, and refuses a missing data root with the ``-o`` key to set.

2. The wheel has no ``s3prl/downstream/ctc/corpus/`` (it lacks an ``__init__.py``, so packaging drops
it) and ``-d ctc`` cannot load any corpus. When it is absent, ``upstream_merged/s3prl_ctc/`` (our
``corpus.libriphone`` and ``corpus.snips`` readers for SUPERB PR and SF) is appended to
``s3prl.downstream.ctc.__path__``.

3. The wheel's ``ctc/data.py`` pops ``num_workers`` out of the config's corpus block on the first
dataloader, so every later one (each dev evaluation, the test split) falls back to 12 worker
processes. ``load_dataset`` is wrapped to pass it a copy of the block, so the configured value holds.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from types import ModuleType

logger = logging.getLogger(__name__)

VOXCELEB1_DATASET = "s3prl.downstream.voxceleb1.dataset"
CTC_PACKAGE = "s3prl.downstream.ctc"
CTC_DATA = "s3prl.downstream.ctc.data"
CTC_CORPUS_DIR = Path(__file__).resolve().parent / "s3prl_ctc"
_PATCHED_MARK = "_upstream_merged_patched"


def voxceleb1_cache_dir(file_path: str, meta_data: str) -> Path:
    """Where the file lists of one (data root, split file) pair are cached."""
    from upstream_merged.sources import cache_root

    digest = hashlib.sha256(str(Path(file_path).resolve()).encode())
    meta = Path(meta_data).resolve()
    digest.update(str(meta).encode() + meta.read_bytes())
    return cache_root() / "s3prl_file_lists" / "voxceleb1" / digest.hexdigest()[:16]


def patch_voxceleb1_dataset(module: ModuleType) -> None:
    """Wrap SpeakerClassifiDataset.__init__ to point the module's CACHE_PATH at our keyed directory."""
    cls = module.SpeakerClassifiDataset
    if getattr(cls.__init__, _PATCHED_MARK, False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, mode, file_path, meta_data, *args, **kwargs):
        if not Path(file_path).is_dir():
            raise FileNotFoundError(
                f"voxceleb1: datarc.file_path {str(file_path)!r} is not a directory; set "
                "-o config.downstream_expert.datarc.file_path=/path/to/VoxCeleb1 (the dir holding dev/wav and test/wav)")
        if not Path(meta_data).is_file():
            raise FileNotFoundError(
                f"voxceleb1: datarc.meta_data {str(meta_data)!r} is not a file; set "
                "-o config.downstream_expert.datarc.meta_data=/path/to/iden_split.txt")
        module.CACHE_PATH = str(voxceleb1_cache_dir(file_path, meta_data)) + "/"
        logger.info("voxceleb1 file lists cached in %s", module.CACHE_PATH)
        original(self, mode, file_path, meta_data, *args, **kwargs)

    setattr(__init__, _PATCHED_MARK, True)
    cls.__init__ = __init__


def add_ctc_corpus(package: ModuleType) -> None:
    """Let ``s3prl.downstream.ctc`` import ``.corpus.*`` from the plugin when the installed s3prl lacks it."""
    paths = list(package.__path__)
    if str(CTC_CORPUS_DIR) in paths or any((Path(p) / "corpus").is_dir() for p in paths):
        return
    package.__path__.append(str(CTC_CORPUS_DIR))


def keep_ctc_num_workers(module: ModuleType) -> None:
    """Wrap ctc/data.py's load_dataset so it pops num_workers from a copy of the corpus block."""
    original = module.load_dataset
    if getattr(original, _PATCHED_MARK, False):
        return

    @functools.wraps(original)
    def load_dataset(split, tokenizer, corpus):
        return original(split, tokenizer, dict(corpus))

    setattr(load_dataset, _PATCHED_MARK, True)
    module.load_dataset = load_dataset


def apply(module: ModuleType) -> None:
    """Apply the fix for one freshly imported stock module (called by the plugin's import hook)."""
    fixes = {VOXCELEB1_DATASET: patch_voxceleb1_dataset, CTC_PACKAGE: add_ctc_corpus, CTC_DATA: keep_ctc_num_workers}
    fixes[module.__name__](module)
