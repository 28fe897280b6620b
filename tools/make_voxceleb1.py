#!/usr/bin/env python3
"""Shim of ``python -m upstream_merged data voxceleb1`` (upstream_merged/data/voxceleb1.py); importing it gives that module."""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # noqa: E702
from upstream_merged.data.runner import shim; shim(__name__, "voxceleb1")  # noqa: E402,E702
