"""Multimodal Attention Merging (MAM, L-MAM): text/image attention projections interpolated into audio encoders."""
