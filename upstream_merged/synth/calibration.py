"""A calibration set built from the synthesizers on first use and cached: ``synth:`` manifests in recipes.

A permutation recipe may name ``calibration.manifest: "synth:speech=24,music=24,seconds=4,seed=0"``:
that many espeak-ng utterances (upstream_merged.synth.speech, a seed stream distinct from the
pretraining corpus) and music phrases (upstream_merged.synth.music) are written once into the plugin
cache with a manifest, and the manifest path is used like any other. Deterministic and offline.
"""
from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path
from typing import Dict

import numpy as np

from upstream_merged.cache import build_atomically, content_key
from upstream_merged.sources import cache_root

logger = logging.getLogger(__name__)

PREFIX = "synth:"
_DEFAULTS = {"speech": 24, "music": 24, "seconds": 4.0, "seed": 0}
_SEED_OFFSET = 1_000_000  # calibration clips never coincide with the pretraining corpus (seed 0, 1, ...)
VERSION = 1  # bump when the synthesizers' output changes, so cached sets are rebuilt


class CalibrationSpecError(ValueError):
    """A ``synth:`` calibration manifest could not be parsed."""


def parse_spec(spec: str) -> Dict[str, float]:
    """``synth:speech=24,music=24,seconds=4,seed=0`` -> its settings (missing keys take the defaults)."""
    if not spec.startswith(PREFIX):
        raise CalibrationSpecError(f"calibration manifest {spec!r} does not start with {PREFIX!r}")
    settings: Dict[str, float] = dict(_DEFAULTS)
    for item in filter(None, spec[len(PREFIX):].split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in _DEFAULTS or not value:
            raise CalibrationSpecError(f"calibration manifest {spec!r}: bad item {item!r}; "
                                       f"write key=value with keys {', '.join(_DEFAULTS)}")
        try:
            settings[key.strip()] = float(value) if key.strip() == "seconds" else int(value)
        except ValueError:
            raise CalibrationSpecError(f"calibration manifest {spec!r}: {key}={value!r} is not a number") from None
    return settings


def _write(settings: Dict[str, float], folder: Path) -> None:
    import soundfile

    from upstream_merged.synth.speech import render_utterance, require_tools, utterances

    lines = []
    if settings["speech"]:
        require_tools("espeak-ng", "sox")
    for n, utt in enumerate(islice(utterances(_SEED_OFFSET + int(settings["seed"])), int(settings["speech"]))):
        name = f"speech_{n:03d}.wav"
        render_utterance(utt, folder / name)
        lines.append(name)
    if settings["music"]:
        from upstream_merged.synth.music import render_phrase

        for n in range(int(settings["music"])):
            rng = np.random.default_rng([_SEED_OFFSET + int(settings["seed"]), n])
            audio, _ = render_phrase(rng, float(settings["seconds"]), 16000)
            name = f"music_{n:03d}.wav"
            soundfile.write(str(folder / name), np.clip(np.asarray(audio, np.float32), -1, 1), 16000, subtype="PCM_16")
            lines.append(name)
    (folder / "manifest.txt").write_text("\n".join(lines) + "\n")


def materialize_calibration(spec: str) -> Path:
    """Build (once, atomically) the calibration set of a ``synth:`` spec; return its manifest path."""
    settings = parse_spec(spec)
    target = cache_root() / "calibration" / f"synth-{content_key({'v': VERSION, **settings})}"
    if not (target / ".complete").is_file():
        logger.info("writing synthetic calibration set %s into %s (first use)", spec, target)
    build_atomically(target, lambda tmp: _write(settings, Path(tmp)))
    return target / "manifest.txt"
