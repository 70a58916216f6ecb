"""The `python -m src.pipeline` command line: compile, run, submit."""
