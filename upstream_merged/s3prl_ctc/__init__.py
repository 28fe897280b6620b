"""Code the plugin lends to stock s3prl's ``ctc`` downstream (see upstream_merged.stock_patches)."""
