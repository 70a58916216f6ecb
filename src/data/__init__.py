"""Getting images: download from GCS (prefixes and archives) and cleanse them."""
