"""s3prl downstream task esc50 (upstream_merged plugin)."""
