"""An open-source KFP pod's process tree, as a container's first process: emissary, launcher, step.

    python3 kfp_pod.py emissary STEP_COMMAND...

Written from the backends' sources (../shared/NOTES.md, "Backend process semantics"):
- Argo's emissary is the main container's PID 1. It starts the command (KFP's
  launcher) in a process group of its own, passes a stop signal on to that group,
  and waits for that child only; when it exits, the kernel kills every other
  process in the container's PID namespace.
- KFP's launcher (backend/src/v2/cmd/launcher-v2, launcher_v2.go) runs the step
  with Go's exec.Command(...).Run(): the step is its child, in its process group;
  the launcher installs no SIGTERM handler, so SIGTERM ends it at once.
So on SIGTERM the step hears it too, but the launcher dies, the emissary follows
and the step is killed mid-save: only what it saved before counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def emissary(command: list[str]) -> int:
    launcher = subprocess.Popen(
        [sys.executable, __file__, "launcher", *command], start_new_session=True
    )
    signal.signal(signal.SIGTERM, lambda *_: os.killpg(launcher.pid, signal.SIGTERM))
    return launcher.wait()  # then PID 1 exits and the namespace goes with it


def launcher(command: list[str]) -> int:
    return subprocess.run(command).returncode  # default SIGTERM: dies at once


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    code = emissary(rest) if role == "emissary" else launcher(rest)
    sys.exit(code if code >= 0 else 128 - code)
