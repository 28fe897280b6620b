"""Correlation-permutation merge (seed 000): align model B's hidden units to model A's, then interpolate.

Modules: ``spec`` (symmetries as data), ``apply`` (apply/invert/compose), ``audio`` and ``calibration``
(streaming statistics at probe sites), ``matching`` (assignment per group), ``merge`` (orchestration),
``presets`` (paper Table I), ``recipe`` (YAML schema), ``report`` (merge_report.json, card, heatmaps).
"""
