"""One folder per local run, chosen before anything starts, holding everything of that run.

<workdir>/<run id>/
    run.json          parameters and whether the sample emulator serves the source
    result.json       written by the worker when the pipeline ends (absent: still running or killed)
    pipeline_root/    kfp.local's root: task outputs and its cache (reused by --resume)
    checkpoints/      the train step's checkpoint mirror (a resumed run continues from it)
    logs/             pipeline.log (everything) and one <task>.log per step
    report/           .html copies of the gallery, the training page and the contact sheet
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.common.errors import ConfigError


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def spec_path(self) -> Path:
        return self.root / "run.json"

    @property
    def result_path(self) -> Path:
        return self.root / "result.json"

    @property
    def pipeline_root(self) -> Path:
        return self.root / "pipeline_root"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @classmethod
    def create(cls, workdir: Path) -> RunFolder:
        """A new, empty run folder; two runs never get the same one (exclusive mkdir)."""
        workdir.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
            try:
                (workdir / run_id).mkdir()
                break
            except FileExistsError:
                continue
        return cls((workdir / run_id).resolve())

    @classmethod
    def find(cls, workdir: Path, run: str | None) -> RunFolder:
        """An earlier run to resume: by id or path, or the newest in `workdir` when None."""
        if run:
            candidate = Path(run) if os.sep in run else workdir / run
        else:
            runs = sorted(p for p in workdir.glob("*/run.json")) if workdir.is_dir() else []
            if not runs:
                raise ConfigError(f"no run to resume in {workdir}: start one without --resume")
            candidate = runs[-1].parent
        if not (candidate / "run.json").is_file():
            raise ConfigError(
                f"{candidate} is not a run folder (no run.json): pass a run id from {workdir}"
            )
        return cls(candidate.resolve())

    def spec(self) -> dict[str, Any]:
        return json.loads(self.spec_path.read_text())

    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_path.read_text()) if self.result_path.is_file() else None
