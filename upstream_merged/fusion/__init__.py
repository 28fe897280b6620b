"""Unified model + layer fusion: frozen upstreams, aligned layers, HConv / CHConv / weighted-sum / GumD interfaces.

Importing this package is cheap; model code loads when an entry is built (see upstream_merged/hub/fusion.py).
"""
