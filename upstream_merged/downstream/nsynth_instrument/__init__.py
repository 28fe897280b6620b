"""s3prl downstream task nsynth_instrument (upstream_merged plugin)."""
