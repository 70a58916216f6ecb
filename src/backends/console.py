"""What a person sees of a local run: a few lines on the console, everything in log files.

The worker's output (kfp.local's own lines and every step's streamed log) is
read line by line: each line goes, without colour codes, to logs/pipeline.log
and to the current step's logs/<task>.log; the console gets a line when a step
starts and ends, the training progress, warnings and errors (all of it with -v).
A log that cannot be written raises RunnerWriteError, naming the file.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from src.backends.run_folder import RunnerWriteError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([\w-]+)'")
_FINISHED = re.compile(r"Task '([\w-]+)' finished with status (\w+)")
_CACHED = re.compile(r"Task ([\w-]+) cache hit")
_TRAIN_PROGRESS = re.compile(r"src\.gan\.training\.loop: (step (\d+)/(\d+) .*)")
_SHOWN = re.compile(
    r" (WARNING|ERROR) src\.|src\.gan\.training\.loop: (resuming|training \d+ images)"
    r"|src\.gan\.training\.live_sync: watch it live"
)
_EXCEPTION = re.compile(r"^\s*((?:[\w.]+\.)?\w*(?:Error|Exception|Diverged|Loss)): (.*)$")
_STOPPED = re.compile(r"stopped by \w+ after step (\d+)")
PROGRESS_LINES = 5  # training progress lines a non-terminal console gets for the whole run,
PROGRESS_EVERY_S = 30.0  # and one at least this often when training is slow


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


@dataclass
class Console:
    """Routes worker output lines to log files and a quiet (or, verbose, full) console."""

    logs: Path
    out: TextIO
    verbose: bool = False
    is_terminal: bool = False
    task: str | None = None
    started: dict[str, float] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)  # tasks taken from an earlier attempt's cache
    _files: dict[str, TextIO] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _overwriting: bool = False
    clock: Callable[[], float] = time.monotonic
    stopping: bool = False  # the runner asked the run to stop (Ctrl-C, SIGTERM)
    stopped_step: int | None = None  # the step the train step saved when it stopped
    _last_progress: float | None = None

    def __post_init__(self) -> None:
        self._open("pipeline", self.logs / "pipeline.log")

    def _open(self, name: str, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[name] = self._stack.enter_context(open(path, "a"))  # noqa: SIM115 (closed by the stack)
        except OSError as error:
            raise RunnerWriteError(path, error) from error

    def log_path(self, task: str) -> Path:
        return self.logs / f"{task}.log"

    def feed(self, raw: str) -> None:
        """Handles one line of worker output."""
        line = strip_ansi(raw.rstrip("\n"))
        if match := _STARTED.search(line):
            self.task = match.group(1)
            self.started[self.task] = time.monotonic()
            self._open(self.task, self.log_path(self.task))
            self.say(f"{self.task}: started")
        if match := _CACHED.search(line):
            self.finished[match.group(1)] = "SUCCESS"
            self.reused.add(match.group(1))
            self.say(f"{match.group(1)}: reused from the earlier attempt")
        self._write("pipeline", line)
        if self.task:
            self._write(self.task, line)
        if match := _STOPPED.search(line):
            self.stopped_step = int(match.group(1))
        if match := _FINISHED.search(line):
            task, status = match.groups()
            self.finished[task] = status
            seconds = time.monotonic() - self.started.get(task, time.monotonic())
            word = "done" if status == "SUCCESS" else "stopped" if self.stopping else status
            self.say(f"{task}: {word} in {seconds:.1f}s")
            self.task = None
            return
        if self.stopping and not self.verbose:
            return  # the runner says what stopping does; the steps' own words are in the logs
        if self.verbose:
            self.say(raw.rstrip("\n"), keep_colour=self.is_terminal)
        elif match := _TRAIN_PROGRESS.search(line):
            self._progress(match.group(1), int(match.group(2)), int(match.group(3)))
        elif _SHOWN.search(line):
            self.say("  " + line.strip().split(": ", 1)[-1])

    def _progress(self, text: str, step: int, total: int) -> None:
        if self.is_terminal:
            self.out.write(f"\r  {text}\x1b[K")
            self.out.flush()
            self._overwriting = True
            return
        every = max(1, -(-total // PROGRESS_LINES))
        now = self.clock()
        if self._last_progress is None:
            self._last_progress = now
        if step % every == 0 or step == total or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.say(f"  {text}")

    def say(self, text: str, keep_colour: bool = False) -> None:
        if self._overwriting:
            self.out.write("\n")
            self._overwriting = False
        self.out.write((text if keep_colour else strip_ansi(text)) + "\n")
        self.out.flush()

    def _write(self, name: str, line: str) -> None:
        handle = self._files[name]
        try:
            handle.write(line + "\n")
            handle.flush()
        except OSError as error:
            raise RunnerWriteError(handle.name, error) from error

    def close(self) -> None:
        """Closes the logs; one that cannot take its last line raises RunnerWriteError."""
        try:
            self._stack.close()
        except OSError as error:
            raise RunnerWriteError(self.logs, error) from error
        finally:
            self._files.clear()


def step_error(log_path: Path, max_lines: int = 25) -> str:
    """The step's own error: the last exception line of its log and the lines it continues on."""
    if not log_path.is_file():
        return "no log"
    lines = log_path.read_text(errors="replace").splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if match := _EXCEPTION.match(lines[index]):
            name, message = match.groups()
            follow = [
                line.strip()
                for line in lines[index + 1 : index + max_lines]
                if line.strip().startswith("- ")
            ]
            return "\n".join([f"{name.rsplit('.', 1)[-1]}: {message}", *follow])
    return "see the log"
