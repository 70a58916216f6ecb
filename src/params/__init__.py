"""The pipeline's parameters: one schema, one set of checks, used by every entry point."""
