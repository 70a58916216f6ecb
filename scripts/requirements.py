"""Prints pyproject.toml's dependencies and test extras, one per line, for `pip install -r`.

The project itself is not installed into the environment: the pipeline's steps
must get `src` from the code embedded in their command, and tests check that.
"""

import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
    "project"
]
print("\n".join([*project["dependencies"], *project["optional-dependencies"]["test"]]))
