"""Scalars and progress frames as TensorBoard event files inside the model folder.

`tensorboard --logdir <model folder or its gs:// URI>` reads them, and Vertex AI
TensorBoard imports them. A run resumed into an empty folder first replays what
its checkpoint remembers; one resumed into the same folder purges the steps it
will redo.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

FOLDER = "tensorboard"
SCALARS = {
    "d_loss": "loss/discriminator",
    "g_loss": "loss/generator",
    "gp": "loss/gradient_penalty",
    "aux": "loss/discriminator_aux",
    "aug_prob": "augmentation/probability",
    "steps_per_second": "speed/steps_per_second",
}


class TensorBoardLog:
    """Writes on the main training process only, synchronously: after `flush` the file holds
    every event so far (tensorboardX's SummaryWriter queues events for a thread of its own,
    and its flush does not wait for the queue, so a copy of the file could miss them)."""

    def __init__(self, model_dir: Path, start_step: int) -> None:
        from tensorboardX.event_file_writer import EventsWriter  # only training needs it

        folder = model_dir / FOLDER
        fresh = not folder.is_dir() or not any(folder.iterdir())
        folder.mkdir(parents=True, exist_ok=True)
        self.needs_replay = fresh and start_step > 0
        self.events = EventsWriter(str(folder / "events"))
        if not fresh:  # TensorBoard drops what earlier files hold from this step on
            self._write(
                start_step, session_log=_proto().SessionLog(status=_proto().SessionLog.START)
            )

    def _write(self, step: int, **fields) -> None:
        self.events.write_event(_proto().Event(wall_time=time.time(), step=step, **fields))

    def scalars(self, row: dict[str, float]) -> None:
        from tensorboardX.summary import scalar

        for key, tag in SCALARS.items():
            if row.get(key) is not None:
                self._write(int(row["step"]), summary=scalar(tag, row[key]))

    def frame(self, frame: dict) -> None:
        from tensorboardX.summary import image

        with Image.open(io.BytesIO(frame["png"])) as picture:
            array = np.asarray(picture.convert("RGB"))
        summary = image("samples/fixed_latents", array, dataformats="HWC")
        self._write(frame["step"], summary=summary)

    def replay(self, history: list[dict], frames: list[dict]) -> None:
        """What a checkpoint remembers, for a folder that lost the earlier event files."""
        for row in history:
            self.scalars(row)
        for frame in frames:
            self.frame(frame)

    def flush(self) -> None:
        self.events.flush()

    def close(self) -> None:
        self.events.close()


def _proto():
    from tensorboardX.proto import event_pb2

    return event_pb2
