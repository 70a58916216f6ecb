"""Keep track of every process a local run starts, and stop all of them (Linux).

The worker becomes a child subreaper: a process whose parent dies is handed to
it, not to init, even when it left the worker's process group or session. So
every process the run ever started stays below the worker, and
`stop_descendants` finds them all in /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

# In the environment of every process a local run starts: how the runner finds them all, even
# orphans of a killed worker that init adopted.
RUN_TAG = "LWGAN_KFP_RUN"
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# What GKE spot nodes and Vertex AI spot VMs give a worker between SIGTERM and SIGKILL.
STOP_GRACE_S = 30.0


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def adopt_orphans() -> None:
    """Orphaned descendants reparent to this process (PR_SET_CHILD_SUBREAPER)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def signal_when_parent_dies(signum: int) -> None:
    """The kernel sends `signum` to this process when its parent dies, even by SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, signum)


def _live_children() -> dict[int, list[int]]:
    """Parent PID -> PIDs of its children that are not zombies, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if state != "Z":
            children.setdefault(int(parent), []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`."""
    children, found, pending = _live_children(), set(), [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def signal_descendants(signum: int) -> int:
    """Sends `signum` to every process below this one; returns how many got it."""
    sent = 0
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
            sent += 1
    return sent


def stop_descendants() -> None:
    """SIGKILLs every process below this one and reaps them, until none is left.

    A process started meanwhile, or orphaned by a kill, is below this one too
    (see adopt_orphans) and is found by the next round.
    """
    while True:
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            reaped, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no child left, live or zombie
        if not reaped:
            time.sleep(0.01)  # the killed ones are still exiting


def tagged(value: str) -> set[int]:
    """Live processes whose environment holds RUN_TAG=`value`, whoever their parent is."""
    needle, found = f"{RUN_TAG}={value}".encode(), set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
            if needle in environ.read_bytes().split(b"\0"):
                found.add(int(environ.parent.name))
    return found - {os.getpid()}


def kill_tagged(value: str) -> int:
    """SIGKILLs every process tagged `value` (see `tagged`); returns how many there were."""
    pids = tagged(value)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
