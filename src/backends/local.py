"""Run the whole pipeline on this machine: kfp.local steps, a GCS emulator, a summary.

Each run owns a folder chosen before it starts (see run_folder.py). The work
happens in a worker process (local_worker.py) that takes every process it
starts down with it, whatever ends it or the runner; the runner shows a quiet
console (console.py) and, at the end, a summary read from its own folder only.
The runner and its worker hold the folder's lock (run_folder.py) while they live.
With no `source_uri`, the worker serves the bundled sample set from a
fake-gcs-server on 127.0.0.1; with one, real GCS is read with
application-default credentials. `resume` continues a failed or killed run:
finished steps come from its cache, training from its last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from src.backends import containers
from src.backends.console import Console, step_error
from src.backends.processes import RUN_TAG, STOP_GRACE_S, kill_tagged
from src.backends.run_folder import RunFolder, RunnerWriteError
from src.common.atomic_files import write_json_atomically
from src.common.errors import ConfigError
from src.common.stale_files import OWNER_MARK, remove_stale_temporaries
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
    image: str | None = None  # run every step in this project image (containers.py)

    def start(self) -> tuple[RunFolder, int]:
        """The run's folder and its lock: a new one with checked parameters, or one to resume.

        Raises RunnerWriteError when a new run's folder cannot be written (none is left).
        """
        if self.resume is not None:
            if self.given:
                raise ConfigError(
                    "--resume continues a run with its own parameters: drop "
                    + ", ".join(sorted(self.given))
                )
            run = RunFolder.find(self.workdir, self.resume or None)
            return run, run.lock()
        sample = "source_uri" not in self.given
        params = resolve(self.given, local_defaults(sample))
        cores = os.cpu_count() or 1
        if params["train_processes"] > cores:
            raise ConfigError(
                f"train_processes={params['train_processes']}: this machine has {cores} cores "
                f"(and each process a full copy of the networks): use at most {cores}"
            )
        if self.image:
            self._check_image(sample)
        try:
            run = RunFolder.create(self.workdir)
        except OSError as error:
            raise RunnerWriteError(error.filename or self.workdir, error) from error
        try:
            lock = run.lock()
            # Training checkpoints are mirrored into the run folder, where --resume finds them.
            params["checkpoint_root"] = params["checkpoint_root"] or str(run.checkpoints)
            spec = {"params": params, "sample": sample, "image": self.image}
            write_json_atomically(run.spec_path, spec)
        except OSError as error:
            shutil.rmtree(run.root, ignore_errors=True)
            raise RunnerWriteError(run.spec_path, error) from error
        return run, lock

    def _check_image(self, sample: bool) -> None:
        """An engine that answers and has the image, and a source the containers can reach."""
        if not sample:
            raise ConfigError(
                "--image runs the steps on a closed network that reaches only the local "
                "emulator, so it takes the bundled sample only: drop --source (or --image)"
            )
        containers.require_image(containers.docker_client(), self.image)


@dataclass
class LocalRunSummary:
    succeeded: bool
    run: RunFolder
    wall_seconds: float
    failed_step: str | None = None
    error: str | None = None
    interrupted: bool = False
    stopped_step: int | None = None  # what the train step saved when the run was stopped
    runner_failed: bool = False  # the runner's own I/O, not a step
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, Path] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)  # steps taken from an earlier attempt

    @property
    def run_dir(self) -> Path:
        return self.run.root

    @property
    def work_seconds(self) -> float:
        """Time inside the steps that ran in this attempt (a reused one's is an earlier attempt's)."""
        return sum(
            float(s.get("work_seconds", 0.0))
            for task, s in self.steps.items()
            if task not in self.reused
        )

    def _time_line(self) -> str:
        line = (
            f"Wall time {self.wall_seconds:.1f}s, of it {self.work_seconds:.1f}s inside the steps"
        )
        if self.reused:
            line += f" that ran ({len(self.reused)} reused from an earlier attempt)"
        return line

    @property
    def resume_hint(self) -> str:
        return f"python -m src.pipeline run --workdir {self.run.root.parent} --resume {self.run.run_id}"

    def _watch_lines(self) -> list[str]:
        board = self.run.checkpoints / "tensorboard"
        return [f"  curves:    tensorboard --logdir {board}"] if board.is_dir() else []

    def text(self) -> str:
        """The closing lines a person reads; a failure ends with its error and log."""
        if self.interrupted:
            saved = (
                f" after training step {self.stopped_step}, saved in {self.run.checkpoints}"
                if self.stopped_step is not None
                else ""
            )
            return f"Stopped{saved}. Resume with:\n  {self.resume_hint}"
        if self.runner_failed:
            return f"FAILED in the runner: {self.error}; then resume:\n  {self.resume_hint}"
        if not self.succeeded:
            log = self.run.logs / f"{self.failed_step}.log"
            return "\n".join(
                [
                    f"FAILED at step {self.failed_step or 'unknown'}:",
                    *(f"  {line}" for line in (self.error or "").splitlines()),
                    *self._report_lines(),
                    f"  log: {log}",
                    self._next_line(),
                ]
            )
        return "\n".join(self._success_lines())

    def _next_line(self) -> str:
        """How to go on: resume; after too few images, a new run (a resume keeps batch_size)."""
        if self.failed_step != "cleanse-images" or "TooFewImagesError" not in (self.error or ""):
            return f"  resume: {self.resume_hint}"
        metrics = max(self.run.pipeline_root.glob("*/cleanse-images/metrics"), default=None)
        kept = int(json.loads(metrics.read_text()).get("kept", 0)) if metrics else 0
        if not kept:
            return "  then:   a new run with that fix (--resume keeps this run's parameters)"
        return f"  new run: {self.new_run_command(batch_size=kept)}"

    def new_run_command(self, **changes: Any) -> str:
        """The command for a new run with this run's parameters, `changes` applied."""
        spec = self.run.spec()
        own = {"checkpoint_root": str(self.run.checkpoints)}  # set by the runner, not the user
        defaults = local_defaults(spec["sample"]) | own
        params = {**spec["params"], **changes}
        given = [f"{k}={v}" for k, v in params.items() if v != defaults[k] or k in changes]
        words = [
            "--workdir",
            str(self.run.root.parent),
            *(f"--param {shlex.quote(g)}" for g in given),
        ]
        return "python -m src.pipeline run " + " ".join(words)

    def _report_lines(self) -> list[str]:
        return [f"  {name + ':':<11}{path.as_uri()}" for name, path in self.reports.items()]

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
        skipped = ", ".join(f"{k} {int(v)}" for k, v in sorted(download.get("skipped", {}).items()))
        return [
            f"Pipeline succeeded ({self.run.run_id}).",
            f"  download:  {download['object_count']} objects, "
            f"{download['total_bytes'] / 1e6:.2f} MB from {download['source_uri']}"
            + (f"; skipped or renamed {skipped}" if skipped else ""),
            f"  cleanse:   kept {int(cleanse['kept'])}, dropped {dropped or 'none'}",
            f"  train:     steps {int(train['start_step'])}->{int(train['end_step'])} in "
            f"{train['seconds']:.1f}s ({train['steps_per_second']:.2f} steps/s), "
            f"final d={train.get('final_d_loss', float('nan')):.3f} "
            f"g={train.get('final_g_loss', float('nan')):.3f}",
            f"  generate:  {generate['count']} images ({generate['generator']} generator), "
            f"SWD vs real {generate['swd']:.3f} (real-vs-real {generate['real_floor']:.3f}, "
            f"noise {generate['noise']:.3f})",
            *self._steps_hint(int(train["end_step"])),
            *self._report_lines(),
            f"  model:     {self.steps['train-gan']['uri']}",
            *self._watch_lines(),
            f"  logs:      {self.run.logs}",
            self._time_line(),
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
    """`.html` copies of the pages a person opens, in run/report/ (a browser needs the suffix).

    A cleanse that failed (too few images) wrote its contact sheet but no outputs
    record: the newest one in the run's folder is published then.
    """
    sources = {
        "gallery": steps.get("generate-images", {}).get("gallery"),
        "training": steps.get("train-gan", {}).get("training_report"),
        "cleanse": steps.get("cleanse-images", {}).get("contact_sheet")
        or max(map(str, run.pipeline_root.glob("*/cleanse-images/contact_sheet")), default=None),
    }
    published = {}
    for name, source in sources.items():
        if not source or not Path(source).is_file():
            continue
        target = run.report / f"{name}.html"
        try:
            run.report.mkdir(exist_ok=True)
            target.write_text(Path(source).read_text())
        except OSError as error:
            raise RunnerWriteError(target, error) from error
        published[name] = target
    return published


def _worker_env(run: RunFolder) -> dict[str, str]:
    env = dict(os.environ)
    env[RUN_TAG] = str(run.root)  # every process of the run inherits it
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
    run, lock = options.start()
    try:
        return _run_in(run, lock, options, out)
    finally:
        os.close(lock)


def _run_in(run: RunFolder, lock: int, options: LocalRunOptions, out: TextIO) -> LocalRunSummary:
    started = time.monotonic()
    out.write(f"run {run.run_id}: {run.root}\n")
    out.flush()
    try:
        # Left by writers killed in an earlier attempt; none of this run's is alive (the lock).
        removed = remove_stale_temporaries(run.root, recursive=True)
        run.checkpoints.mkdir(exist_ok=True)
        (run.checkpoints / OWNER_MARK).touch()  # the train step's to clean, also for older runs
        run.result_path.unlink(missing_ok=True)
        image = run.spec().get("image")
        console = Console(run.logs, out, options.verbose, is_terminal=out.isatty())
    except OSError as error:
        failure = RunnerWriteError(error.filename or run.root, error)
        return LocalRunSummary(False, run, 0.0, error=str(failure), runner_failed=True)
    except RunnerWriteError as error:
        return LocalRunSummary(False, run, 0.0, error=str(error), runner_failed=True)
    if removed:
        console.say(f"  removed {len(removed)} temporary files that killed writers left")
    worker = subprocess.Popen(
        [sys.executable, "-m", "src.backends.local_worker", str(run.root), str(os.getpid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # out of reach of the terminal's Ctrl-C: the runner stops it
        env=_worker_env(run),
        cwd=PROJECT_ROOT,
        pass_fds=(lock,),  # the worker holds the run's lock for as long as it lives
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    failure = None
    try:
        for line in worker.stdout:
            console.feed(line)
        worker.wait()
    except (KeyboardInterrupt, Interrupted):
        console.say("  stopping: the train step saves the step it is in, then the run ends")
        console.stopping = True
        _stop(worker, console)
        wall = time.monotonic() - started
        return LocalRunSummary(
            False, run, wall, interrupted=True, stopped_step=console.stopped_step
        )
    except RunnerWriteError as error:
        failure = error
        _stop(worker)
    finally:
        signal.signal(signal.SIGTERM, previous)
        # The worker stops all it started, unless it was killed first: then its orphans go here.
        kill_tagged(str(run.root))
        if image:
            with contextlib.suppress(ConfigError):
                containers.remove_run_containers(run.root)
        # After a failed write the same file fails again on close: the first failure is reported.
        with contextlib.suppress(RunnerWriteError) if failure else contextlib.nullcontext():
            console.close()
    if failure is None:
        try:
            return _summarise(run, console, time.monotonic() - started)
        except RunnerWriteError as error:
            failure = error
    return LocalRunSummary(
        False, run, time.monotonic() - started, error=str(failure), runner_failed=True
    )


def _stop(worker: subprocess.Popen, console: Console | None = None) -> None:
    """Asks the worker to stop (it passes SIGTERM on to the steps and grants them the grace
    spot VMs give) and shows what they still print; a second Ctrl-C ends it all at once."""
    worker.terminate()
    deadline = time.monotonic() + STOP_GRACE_S + 10
    try:
        while console is not None and time.monotonic() < deadline:
            ready, _, _ = select.select([worker.stdout], [], [], deadline - time.monotonic())
            line = worker.stdout.readline() if ready else ""
            if not line:
                break
            console.feed(line)
        worker.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (KeyboardInterrupt, Interrupted, subprocess.TimeoutExpired):
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _summarise(run: RunFolder, console: Console, wall: float) -> LocalRunSummary:
    steps = read_task_outputs(run.pipeline_root)
    result = run.result()
    succeeded = bool(result and result["succeeded"])
    summary = LocalRunSummary(succeeded, run, wall, steps=steps, reused=console.reused)
    summary.reports = publish_reports(run, steps)
    if result is None:  # the worker itself failed (its error is its last line)
        summary.runner_failed = True
        summary.error = step_error(console.log_path("pipeline"))
    elif not summary.succeeded:
        failed = [task for task, status in console.finished.items() if status != "SUCCESS"]
        summary.failed_step = failed[-1] if failed else console.task
        summary.error = step_error(console.log_path(summary.failed_step or "pipeline"))
    return summary
