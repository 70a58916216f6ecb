"""What a preemption costs: SIGTERM (which this project answers) against SIGKILL at the same step.

    python -m bench.preemption [--steps 60] [--stop-after 10] [--repeats 3]

A training process (CPU, the smoke settings, checkpoints every 1,000 steps and
mirrored to a folder) is stopped once it has logged `--stop-after` steps. Given
SIGTERM, it finishes the step in flight, saves and mirrors it, and exits: what is
lost is the seconds from the signal to the mirrored checkpoint. Killed outright,
as a backend does a process that ignores SIGTERM, it keeps only its last periodic
checkpoint (step 0 here) and loses every step since. Prints both, medians of
`--repeats` runs each, and the ratio of the work lost.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

TRAIN = (
    "import sys; from pathlib import Path; from dataclasses import replace;"
    "from devtools.smoke import SMOKE; from src.common.step_logging import configure_logging;"
    "from src.gan.training.loop import train_gan; configure_logging();"
    "train_gan(Path(sys.argv[1]), Path(sys.argv[2]), replace(SMOKE, steps=int(sys.argv[4]),"
    " save_every=1000), checkpoint_root=sys.argv[3])"
)


def stop_once(data: Path, work: Path, how: signal.Signals, steps: int, after: int) -> dict:
    """One run stopped by `how` after `after` logged steps: what the mirror holds then."""
    from src.gan.model_folder import CHECKPOINT_NAME, load_checkpoint

    mirror, log = work / "mirror", work / "train.log"
    with open(log, "w") as sink:
        command = [
            sys.executable,
            "-c",
            TRAIN,
            str(data),
            str(work / "model"),
            str(mirror),
            str(steps),
        ]
        process = subprocess.Popen(command, cwd=ROOT, stderr=sink, stdout=sink)
        logged, started = 0, time.monotonic()
        while logged < after:
            time.sleep(0.05)
            found = re.findall(r"step (\d+)/\d+ ", log.read_text())
            logged = int(found[-1]) if found else 0
            if process.poll() is not None or time.monotonic() - started > 600:
                raise RuntimeError(f"training ended before step {after}: see {log}")
        step_seconds = (time.monotonic() - started) / logged  # start-up included: an upper bound
        signalled = time.time()
        process.send_signal(how)
        process.wait()
    saved = load_checkpoint(mirror)["step"]
    mirrored_at = (mirror / CHECKPOINT_NAME).stat().st_mtime
    return {
        "signalled_at_step": logged,
        "saved_step": saved,
        "steps_lost": max(0, logged - saved),
        "seconds_to_checkpoint": max(0.0, mirrored_at - signalled),
        "step_seconds": step_seconds,
    }


def lost_seconds(outcome: dict) -> float:
    """Work lost: steps redone after the restart, plus the time the stop itself took."""
    return outcome["steps_lost"] * outcome["step_seconds"] + outcome["seconds_to_checkpoint"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--stop-after", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from src.data.cleanse import CleanseSettings, cleanse_folder

    outcomes: dict[str, list[dict]] = {"SIGTERM": [], "SIGKILL": []}
    with tempfile.TemporaryDirectory(prefix="bench-preemption-") as folder:
        data = Path(folder) / "cleansed"
        cleanse_folder(ROOT / "data" / "sample", data, CleanseSettings(image_size=32, workers=1))
        for repeat in range(args.repeats):
            for how in (signal.SIGTERM, signal.SIGKILL):  # alternating: the machine drifts
                work = Path(folder) / f"{how.name}-{repeat}"
                work.mkdir()
                outcomes[how.name].append(stop_once(data, work, how, args.steps, args.stop_after))
    term = {
        key: statistics.median(o[key] for o in outcomes["SIGTERM"])
        for key in outcomes["SIGTERM"][0]
    }
    kill = {
        key: statistics.median(o[key] for o in outcomes["SIGKILL"])
        for key in outcomes["SIGKILL"][0]
    }
    ours = statistics.median(lost_seconds(o) for o in outcomes["SIGTERM"])
    baseline = statistics.median(lost_seconds(o) for o in outcomes["SIGKILL"])
    print(
        f"preemption after {args.stop_after} steps, checkpoints every 1000, medians of {args.repeats}"
    )
    print(f"  SIGTERM: saved step {term['saved_step']:.0f}, {term['steps_lost']:.0f} steps lost, "
          f"{term['seconds_to_checkpoint']:.2f}s from the signal to the mirrored checkpoint")  # fmt: skip
    print(f"  SIGKILL: saved step {kill['saved_step']:.0f}, {kill['steps_lost']:.0f} steps lost "
          f"({kill['step_seconds']:.2f}s a step)")  # fmt: skip
    print(f"  work lost: {ours:.2f}s vs {baseline:.2f}s, ratio {baseline / max(ours, 1e-3):.1f}x")


if __name__ == "__main__":
    main()
