"""Run the whole pipeline on this machine: kfp.local steps, a GCS emulator, a summary.

Each run owns a folder chosen before it starts (see run_folder.py). The work
happens in a worker process (local_worker.py) that takes every process it
starts down with it, whatever ends the runner; the runner shows a quiet
console (console.py) and, at the end, a summary read from its own folder only.
With no `source_uri`, the worker serves the bundled sample set from a
fake-gcs-server on 127.0.0.1; with one, real GCS is read with
application-default credentials. `resume` continues a failed or killed run:
finished steps come from its cache, training from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from src.backends.console import Console, step_error
from src.backends.run_folder import RunFolder
from src.common.atomic_files import write_json_atomically
from src.common.errors import ConfigError
from src.params.schema import local_defaults
from src.params.values import resolve

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Where the bundled digits become recognisable at the default local settings (bench/learning_curve.py).
VISIBLE_RESULT_STEPS = 1500


class Interrupted(Exception):
    """The runner got SIGINT or SIGTERM."""


@dataclass
class LocalRunOptions:
    """A local run: the parameters given (strings or values), or an earlier run to resume."""

    given: dict[str, Any] = field(default_factory=dict)
    workdir: Path = Path("runs")
    resume: str | None = None  # run id or folder; "" for the newest run in workdir
    verbose: bool = False

    def start(self) -> RunFolder:
        """The run's folder: a new one with checked parameters, or the one to resume."""
        if self.resume is not None:
            if self.given:
                raise ConfigError(
                    "--resume continues a run with its own parameters: drop "
                    + ", ".join(sorted(self.given))
                )
            return RunFolder.find(self.workdir, self.resume or None)
        params = resolve(self.given, local_defaults())
        run = RunFolder.create(self.workdir)
        # Training checkpoints are mirrored into the run folder, where --resume finds them.
        params["checkpoint_root"] = params["checkpoint_root"] or str(run.checkpoints)
        write_json_atomically(
            run.spec_path, {"params": params, "sample": "source_uri" not in self.given}
        )
        return run


@dataclass
class LocalRunSummary:
    succeeded: bool
    run: RunFolder
    wall_seconds: float
    failed_step: str | None = None
    error: str | None = None
    interrupted: bool = False
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.run.root

    @property
    def work_seconds(self) -> float:
        return sum(float(s.get("work_seconds", 0.0)) for s in self.steps.values())

    @property
    def resume_hint(self) -> str:
        return f"python -m src.pipeline run --workdir {self.run.root.parent} --resume {self.run.run_id}"

    def text(self) -> str:
        """The closing lines a person reads; a failure ends with its error and log."""
        if self.interrupted:
            return f"Interrupted. Resume with:\n  {self.resume_hint}"
        if not self.succeeded:
            log = self.run.logs / f"{self.failed_step}.log"
            return "\n".join(
                [
                    f"FAILED at step {self.failed_step or 'unknown'}:",
                    *(f"  {line}" for line in (self.error or "").splitlines()),
                    f"  log: {log}",
                    f"  resume: {self.resume_hint}",
                ]
            )
        return "\n".join(self._success_lines())

    @staticmethod
    def _steps_hint(steps: int) -> list[str]:
        if steps >= VISIBLE_RESULT_STEPS:
            return []
        return [
            f"  note:      {steps} steps prove the parts work; samples read as digits after about "
            f"{VISIBLE_RESULT_STEPS} steps here (run --steps {VISIBLE_RESULT_STEPS}; see README)"
        ]

    def _success_lines(self) -> list[str]:
        download = self.steps["download-images"]
        cleanse = self.steps["cleanse-images"]["metrics"]
        train = self.steps["train-gan"]["metrics"]
        generate = self.steps["generate-images"]
        dropped = ", ".join(
            f"{k.removeprefix('dropped_')} {int(v)}"
            for k, v in sorted(cleanse.items())
            if k.startswith("dropped_")
        )
        return [
            f"Pipeline succeeded ({self.run.run_id}).",
            f"  download:  {download['object_count']} objects, "
            f"{download['total_bytes'] / 1e6:.2f} MB from {download['source_uri']}",
            f"  cleanse:   kept {int(cleanse['kept'])}, dropped {dropped or 'none'}"
            + (
                "; all grey: --param greyscale=true trains 1 channel"
                if cleanse.get("all_grey")
                else ""
            ),
            f"  train:     steps {int(train['start_step'])}->{int(train['end_step'])} in "
            f"{train['seconds']:.1f}s ({train['steps_per_second']:.2f} steps/s), "
            f"final d={train.get('final_d_loss', float('nan')):.3f} "
            f"g={train.get('final_g_loss', float('nan')):.3f}",
            f"  generate:  {generate['count']} images ({generate['generator']} generator), "
            f"SWD vs real {generate['swd']:.3f} (real-vs-real {generate['real_floor']:.3f}, "
            f"noise {generate['noise']:.3f})",
            *self._steps_hint(int(train["end_step"])),
            *(f"  {name + ':':<11}{path.as_uri()}" for name, path in self.reports.items()),
            f"  model:     {self.steps['train-gan']['uri']}",
            f"  logs:      {self.run.logs}",
            f"Wall time {self.wall_seconds:.1f}s, of it {self.work_seconds:.1f}s inside the steps",
        ]


def read_task_outputs(pipeline_root: Path) -> dict[str, dict[str, Any]]:
    """Per task: artifact metadata, metrics and paths from kfp.local's executor_output.json.

    A resumed run has several executions in one root; a later one wins, and a task
    reused from the cache keeps the outputs of the execution that ran it.
    """
    steps: dict[str, dict[str, Any]] = {}
    for executor_output in sorted(pipeline_root.glob("*/*/executor_output.json")):
        task = executor_output.parent.name
        payload = json.loads(executor_output.read_text())
        info: dict[str, Any] = {"metrics": {}}
        for name, artifact_list in payload.get("artifacts", {}).items():
            for artifact in artifact_list.get("artifacts", []):
                metadata = artifact.get("metadata", {})
                if name == "metrics":
                    info["metrics"].update(metadata)
                    continue
                info.update(metadata)
                uri = artifact.get("uri", "")
                local = uri.removeprefix("file://") if uri else str(executor_output.parent / name)
                if name in ("gallery", "training_report", "contact_sheet"):
                    info[name] = local
                else:
                    info.setdefault("uri", local)
        steps[task] = info
    return steps


def publish_reports(run: RunFolder, steps: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """`.html` copies of the pages a person opens, in run/report/ (a browser needs the suffix)."""
    run.report.mkdir(exist_ok=True)
    sources = {
        "gallery": steps.get("generate-images", {}).get("gallery"),
        "training": steps.get("train-gan", {}).get("training_report"),
        "cleanse": steps.get("cleanse-images", {}).get("contact_sheet"),
    }
    published = {}
    for name, source in sources.items():
        if not source or not Path(source).is_file():
            continue
        target = run.report / f"{name}.html"
        target.write_text(Path(source).read_text())
        published[name] = target
    return published


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PIP_NO_INDEX", "1")  # everything the steps pin is installed already
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _raise_interrupted(*_: Any) -> None:
    raise Interrupted


def run_locally(options: LocalRunOptions, out: TextIO | None = None) -> LocalRunSummary:
    """Runs the pipeline in its own run folder and returns what happened."""
    out = out or sys.stdout
    run = options.start()
    out.write(f"run {run.run_id}: {run.root}\n")
    out.flush()
    run.result_path.unlink(missing_ok=True)
    console = Console(run.logs, out, options.verbose, is_terminal=out.isatty())
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "src.backends.local_worker", str(run.root), str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own process group, which it kills on the way out
        env=_worker_env(),
        cwd=PROJECT_ROOT,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        for line in worker.stdout:
            console.feed(line)
        worker.wait()
    except (KeyboardInterrupt, Interrupted):
        worker.terminate()  # the worker kills its whole group
        worker.wait()
        return LocalRunSummary(False, run, time.monotonic() - started, interrupted=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        console.close()
    return _summarise(run, console, time.monotonic() - started)


def _summarise(run: RunFolder, console: Console, wall: float) -> LocalRunSummary:
    steps = read_task_outputs(run.pipeline_root)
    result = run.result() or {"succeeded": False, "error": "the worker ended without a result"}
    summary = LocalRunSummary(result["succeeded"], run, wall, steps=steps)
    summary.reports = publish_reports(run, steps)
    if not summary.succeeded:
        failed = [task for task, status in console.finished.items() if status != "SUCCESS"]
        summary.failed_step = failed[-1] if failed else console.task
        summary.error = step_error(console.log_path(summary.failed_step or "pipeline"))
    return summary
