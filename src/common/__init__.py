"""Small helpers every layer may use: errors, atomic files, retries, progress, logging."""
