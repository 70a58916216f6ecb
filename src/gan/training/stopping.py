"""Stop requests from outside: SIGTERM before a preemption, Ctrl-C. They cost seconds, not hours.

GKE spot nodes and Vertex AI spot VMs send SIGTERM about 30 s before they kill a
worker (the step's command execs down to the Python process, so the signal reaches
it; KFP's Argo executor signals the whole process group). The handler only records
the request; the loop then finishes the step in flight, saves and mirrors a
checkpoint of it, and raises `Preempted`, so the step exits non-zero and is
retried, and the retry resumes exactly there. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from types import FrameType, TracebackType

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(RuntimeError):
    """Training stopped on request after saving its last step; a retry continues from it."""


class StopRequests:
    """While active, SIGTERM and a first SIGINT set `requested` instead of ending the process.

    With `forward`, SIGTERM is also passed on to this process's children (the training
    ranks): a container runtime (docker stop, a Vertex worker) signals only the first
    process. SIGINT is not: a terminal's Ctrl-C reaches the whole process group.
    """

    def __init__(self, forward: bool = False) -> None:
        self.requested: signal.Signals | None = None
        self.forward = forward
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # only there can Python listen
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if number == signal.SIGINT and self.requested is not None:
            raise KeyboardInterrupt
        if self.requested is None:
            log.warning(
                "%s received: finishing the step in flight, then saving a checkpoint of it",
                signal.Signals(number).name,
            )
        self.requested = signal.Signals(number)
        if self.forward and number == signal.SIGTERM:
            for child in multiprocessing.active_children():
                os.kill(child.pid, number)
