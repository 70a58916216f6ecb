"""Write compiled IR YAML without line folding, innermost mappings on one line.

KFP's compiler folds each component's long program string at 80 columns, with
an escape and an indent on every folded line. Written unfolded, the same
documents take about 2.4 KB less per file here, and writing each innermost
mapping in flow style (`{parameterType: STRING}`) another 3 KB. Every document loads to exactly
what the compiler produced. Of its header comment we keep the name and
description: the input list repeats `root.inputDefinitions` (about 1 KB).
"""

from __future__ import annotations

from pathlib import Path

import yaml


def rewrite_unfolded(path: Path) -> None:
    """Rewrites the compiler's YAML at `path` in place: same documents, no folded lines."""
    text = path.read_text()
    documents = list(yaml.safe_load_all(text))
    body = yaml.safe_dump_all(documents, sort_keys=True, width=2**31 - 1, default_flow_style=None)
    path.write_text(_leading_comment(text) + body)


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#") or line.startswith("# Inputs:"):
            break
        lines.append(line)
    return "".join(lines)
