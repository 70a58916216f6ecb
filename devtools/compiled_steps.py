"""Run a step's command exactly as compiled, the way a backend's launcher would.

The executor input is built from the compiled component's own input and output
definitions: parameters from `params` (or their declared defaults), artifacts
as local folders. The command runs in an empty folder with `python3` and `pip`
taken from `bin_dir`, so `src` exists only inside the command's embedded code.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

SCHEMA_OF = {"Dataset": "system.Dataset", "Model": "system.Model", "Artifact": "system.Artifact"}


def load_spec(path: Path) -> dict:
    return next(yaml.safe_load_all(path.read_text()))


def executor_input(
    spec: dict,
    task: str,
    params: dict[str, Any],
    inputs: dict[str, Path],
    out_dir: Path,
) -> dict:
    """The executor input of `task`: every parameter, input artifacts, outputs under `out_dir`."""
    component = spec["components"][f"comp-{task}"]
    definitions = component.get("inputDefinitions", {})
    values = {}
    for name, definition in definitions.get("parameters", {}).items():
        if name in params:
            value = params[name]
        elif "defaultValue" in definition:
            value = definition["defaultValue"]
        else:
            raise KeyError(f"{task} needs a value for {name}")
        # The backends' Go drivers write a whole double as `8`, which Python reads as an int.
        integer = definition["parameterType"] == "NUMBER_INTEGER"
        values[name] = int(value) if integer else value

    def artifact(name: str, schema: dict, uri: Path) -> dict:
        entry = {"name": name, "type": schema, "uri": str(uri), "metadata": {}}
        return {"artifacts": [entry]}

    artifacts_in = definitions.get("artifacts", {})
    outputs = component.get("outputDefinitions", {}).get("artifacts", {})
    return {
        "inputs": {
            "parameterValues": values,
            "artifacts": {
                name: artifact(name, d["artifactType"], inputs[name])
                for name, d in artifacts_in.items()
            },
        },
        "outputs": {
            "artifacts": {
                name: artifact(name, d["artifactType"], out_dir / name)
                for name, d in outputs.items()
            },
            "outputFile": str(out_dir / "executor_output.json"),
        },
    }


def run_step(
    spec: dict, task: str, payload: dict, workdir: Path, bin_dir: Path, timeout_s: float = 900
) -> subprocess.CompletedProcess:
    """Runs the compiled command of `task` in `workdir` (empty) with `bin_dir` first on PATH."""
    container = spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]
    args = [json.dumps(payload) if arg == "{{$}}" else arg for arg in container["args"]]
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    probe = subprocess.run(
        [str(bin_dir / "python3"), "-c", "import src"], cwd=workdir, env=env, capture_output=True
    )
    if probe.returncode == 0:
        raise RuntimeError(f"src is importable in {workdir}: the run would prove nothing")
    return subprocess.run(
        [*container["command"], *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def metrics_of(out_dir: Path, name: str = "metrics") -> dict:
    output = json.loads((out_dir / "executor_output.json").read_text())
    return output["artifacts"][name]["artifacts"][0]["metadata"]
