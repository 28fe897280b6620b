"""Entries on the small encoders pretrained here and shipped in the package (small:hubert, small:mert).

hubert_small / mert_small themselves are baselines (hub/baselines.py). merged_hubert_mert*_small: every
permutation preset of hub/permutation.py on the two small encoders, calibrated on a seeded espeak-ng
speech + synthesised music set built on first use (``synth:`` manifest, upstream_merged/synth/calibration.py).
fusion_hubert_mert_small_*: the two small encoders fused by HConv, CHConv, weighted sum or GumD.
Everything runs offline.
"""
from __future__ import annotations

from upstream_merged.hub import fusion, permutation

FUSION_INTERFACES = ("hconv", "chconv", "ws", "gumd")

for _suffix, (_preset, _recipe_suffix, _what) in permutation.PERMUTATION_ENTRIES.items():
    permutation.register_entry(f"merged_hubert_mert{_suffix}_small", _preset, f"small_hubert_mert{_recipe_suffix}",
                               f"shipped small encoders: {_what}")
for _interface in FUSION_INTERFACES:
    fusion.register_entry(f"fusion_hubert_mert_small_{_interface}", f"small_fusion_hubert_mert_{_interface}",
                          _interface, "the shipped small HuBERT + small MERT")
