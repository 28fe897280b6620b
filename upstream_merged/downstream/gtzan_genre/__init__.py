"""s3prl downstream task gtzan_genre (upstream_merged plugin)."""
