"""Shim of upstream_merged/data/shared.py (what the dataset layouts share); importing it gives that module."""
import sys; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # noqa: E702
import upstream_merged.data.shared; sys.modules[__name__] = upstream_merged.data.shared  # noqa: E402,E702
