"""The process that runs the pipeline for `python -m src.pipeline run`, and dies with its parent.

Started in a session of its own by the runner, it asks the kernel for SIGTERM
when the runner dies (even by SIGKILL) and answers SIGTERM by killing its whole
process group: the emulator, kfp.local's step subprocesses and training ranks.

    python -m src.backends.local_worker RUN_FOLDER RUNNER_PID
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from kfp import local

from src.backends.emulator import GcsEmulator
from src.backends.run_folder import RunFolder
from src.backends.sample import upload_sample
from src.common.atomic_files import write_json_atomically
from src.pipeline import build_pipeline

PR_SET_PDEATHSIG = 1


def die_with(parent_pid: int) -> None:
    """SIGTERM when the parent dies; SIGTERM ends every process of this group."""
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(os.getpgrp(), signal.SIGKILL))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.killpg(os.getpgrp(), signal.SIGKILL)


def run(folder: RunFolder) -> dict:
    """Runs the pipeline once in `folder`; returns what result.json records."""
    spec = folder.spec()
    if spec["sample"]:
        emulator = GcsEmulator.start(folder.logs)  # dies with this process group
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
        upload_sample(emulator.client())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(folder.pipeline_root),
        enable_caching=True,  # the cache lives in this run's folder: only --resume reuses it
        raise_on_error=True,
    )
    try:
        build_pipeline("local")(**spec["params"])
    except RuntimeError as error:
        return {"succeeded": False, "error": str(error)}
    return {"succeeded": True}


def main(argv: list[str]) -> int:
    folder, parent_pid = RunFolder(Path(argv[0])), int(argv[1])
    die_with(parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # cache hits
    result = run(folder)
    write_json_atomically(folder.result_path, result)
    return 0 if result["succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
