"""One folder per local run, chosen before anything starts, holding everything of that run.

<workdir>/<run id>/
    run.json          parameters and whether the sample emulator serves the source
    run.lock          flock()ed by the live runner and its worker: one process tree per run
    result.json       written by the worker when the pipeline ends (absent: still running or killed)
    pipeline_root/    kfp.local's root: task outputs and its cache (reused by --resume)
    checkpoints/      the train step's checkpoint mirror (a resumed run continues from it)
    logs/             pipeline.log (everything) and one <task>.log per step
    report/           .html copies of the gallery, the training page and the contact sheet
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.common.errors import ConfigError


class RunnerWriteError(Exception):
    """The runner could not write one of its own files; the message names it and the fix."""

    def __init__(self, path: Path | str, error: OSError) -> None:
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            fix = "make that folder writable"
        else:
            fix = "free space on that disk"
        super().__init__(f"cannot write {path} ({error.strerror or error}): {fix}")
        self.path = Path(path)


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
    def lock_path(self) -> Path:
        return self.root / "run.lock"

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

    def lock(self) -> int:
        """Takes the run's lock; returns its descriptor, which a worker inherits to hold it too.

        The kernel drops the lock when every process holding the descriptor has
        exited, however it ended. Raises ConfigError, naming the process that holds
        it, while another runner works in this folder.
        """
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "?"
            os.close(descriptor)
            raise ConfigError(
                f"run {self.run_id} is still running (process {holder} holds {self.lock_path}): "
                f"wait for it to end, or stop it (kill {holder}) and then resume"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode())
        return descriptor

    def spec(self) -> dict[str, Any]:
        return json.loads(self.spec_path.read_text())

    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_path.read_text()) if self.result_path.is_file() else None
