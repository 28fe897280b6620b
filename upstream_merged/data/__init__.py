"""Synthetic datasets in the exact on-disk layouts stock s3prl recipes read: ``python -m upstream_merged data LAYOUT OUT``.

One module a layout (``LAYOUT``: name, help, options and the writer, see :mod:`upstream_merged.data.runner`);
the same arguments give the same bytes.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Dict

if TYPE_CHECKING:  # the layouts import numpy and soundfile: loaded when asked for
    from upstream_merged.data.runner import Layout

LAYOUT_NAMES = ("diarization", "esc50", "fluent_commands", "gtzan", "iemocap", "libriphone", "librispeech",
                "ljspeech", "nsynth", "pretrain_corpora", "quesst14", "snips", "speech_commands", "vctk", "voxceleb1")


def layouts() -> Dict[str, "Layout"]:
    """Every dataset layout by name."""
    return {name: importlib.import_module(f"upstream_merged.data.{name}").LAYOUT for name in LAYOUT_NAMES}
