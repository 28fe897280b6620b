"""Test helpers: the s3prl upstream contract, stock s3prl runs, published-layout models (tiny: sources: upstream_merged.tiny)."""
