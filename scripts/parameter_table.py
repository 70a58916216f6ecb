"""Prints the pipeline-parameter table of docs/parameters.md from src/params/schema.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.params.descriptions import DESCRIPTIONS
from src.params.schema import PARAMS


def cell(value: object) -> str:
    return "required" if value is None else f"`{value!r}`"


print("| parameter | compiled default | local default | meaning |")
print("| --- | --- | --- | --- |")
for p in PARAMS:
    print(f"| `{p.name}` | {cell(p.compiled)} | {cell(p.local_default)} | {DESCRIPTIONS[p.name]} |")
