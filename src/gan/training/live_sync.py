"""What a person watches, copied out while training runs: TensorBoard events and progress frames.

The Model artifact reaches the bucket only after the step succeeds (open-source
KFP) and the pipeline UIs show the training page only then, so the event files
and frames go to the checkpoint mirror as training runs: at the first logging
interval, then at most once a minute. `tensorboard --logdir <mirror>/tensorboard`
shows the curves meanwhile. With Vertex AI TensorBoard attached to the job
(`AIP_TENSORBOARD_LOG_DIR`), the event files go there too and Vertex streams them.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from src.common import runtime_env
from src.gan.training.checkpoint_mirror import CheckpointMirror
from src.gan.watching.progress_frames import FOLDER as FRAMES
from src.gan.watching.tensorboard_log import FOLDER as BOARD

log = logging.getLogger(__name__)
MIN_SECONDS = 60.0


class LiveSync:
    """Copies new or grown files of tensorboard/ and progress/ to the mirror(s), rate-limited."""

    def __init__(
        self, model_dir: Path, mirror: CheckpointMirror | None, every_s: float = MIN_SECONDS
    ) -> None:
        self.model_dir, self.every_s = model_dir, every_s
        self.targets: list[tuple[CheckpointMirror, str, str]] = []  # mirror, local folder, prefix
        if mirror is not None:
            self.targets += [(mirror, BOARD, BOARD), (mirror, FRAMES, FRAMES)]
        if os.environ.get(runtime_env.VERTEX_LOG_DIR):
            self.targets.append(
                (CheckpointMirror(os.environ[runtime_env.VERTEX_LOG_DIR]), BOARD, "")
            )
        self._sent: dict[tuple[int, str], int] = {}
        self._last: float | None = None

    def announce(self) -> None:
        """The step's first lines: the command that watches this run, and Vertex's page."""
        for mirror, folder, prefix in self.targets:
            if folder == BOARD:
                log.info("watch it live: tensorboard --logdir %s", mirror.location(prefix))
        if os.environ.get(runtime_env.TENSORBOARD):
            log.info(
                "Vertex AI TensorBoard: %s",
                vertex_console_link(os.environ[runtime_env.TENSORBOARD]),
            )

    def due(self, now: float | None = None) -> bool:
        """True at the first call and once `every_s` have passed since the last sync."""
        now = time.monotonic() if now is None else now
        return self._last is None or now - self._last >= self.every_s

    def sync(self) -> int:
        """Copies every changed file now; returns how many."""
        self._last, copied = time.monotonic(), 0
        for index, (mirror, folder, prefix) in enumerate(self.targets):
            for path in sorted((self.model_dir / folder).glob("*")):
                size = path.stat().st_size if path.is_file() else -1
                if size < 0 or self._sent.get((index, path.name)) == size:
                    continue
                mirror.push(
                    self.model_dir, f"{folder}/{path.name}", f"{prefix}/{path.name}".lstrip("/")
                )
                self._sent[(index, path.name)] = size
                copied += 1
        return copied


def vertex_console_link(resource: str) -> str:
    """The Cloud console page of a `projects/P/locations/L/tensorboards/ID` resource."""
    parts = resource.split("/")
    project, region, board = parts[1], parts[3], parts[5]
    return (
        "https://console.cloud.google.com/vertex-ai/experiments/tensorboard-instances/regions/"
        f"{region}/{board}?project={project}"
    )
