"""s3prl downstream task nsynth_pitch (upstream_merged plugin)."""
