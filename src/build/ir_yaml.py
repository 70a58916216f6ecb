"""Write a pipeline's IR YAML: the compiler's documents, unfolded, innermost mappings on one line.

KFP's compiler folds each component's long program string at 80 columns, with
an escape and an indent on every folded line. Written unfolded, the same
documents take about 2.4 KB less per file here, and writing each innermost
mapping in flow style (`{parameterType: STRING}`) another 3 KB. Of the compiler's
header comment we keep the name and description: the input list repeats
`root.inputDefinitions` (about 1 KB). The documents are what `Compiler().compile`
writes (a test loads both and compares); written with libyaml, in a fraction of
the time PyYAML's pure-Python emitter takes.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp.compiler import pipeline_spec_builder

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_ir(pipeline, path: Path) -> None:
    """Writes the IR of `pipeline` (a `@dsl.pipeline` function) to `path`."""
    spec = json_format.MessageToDict(pipeline.pipeline_spec)
    documents = [spec]
    if pipeline.platform_spec.platforms:
        documents.append(json_format.MessageToDict(pipeline.platform_spec))
    comment = pipeline_spec_builder.extract_comments_from_pipeline_spec(spec, pipeline.description)
    body = yaml.dump_all(
        documents, Dumper=_DUMPER, sort_keys=True, width=2**31 - 1, default_flow_style=None
    )
    path.write_text(_leading_comment(comment) + body)


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#") or line.startswith("# Inputs:"):
            break
        lines.append(line)
    return "".join(lines)
