"""Scalars and progress frames as TensorBoard event files inside the model folder.

`tensorboard --logdir <model folder or its gs:// URI>` reads them, and Vertex AI
TensorBoard imports them. A run resumed into an empty folder first replays what
its checkpoint remembers; one resumed into the same folder purges the steps it
will redo.
"""

from __future__ import annotations

import io
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
    """Writes on the main training process only; every call is cheap and buffered."""

    def __init__(self, model_dir: Path, start_step: int) -> None:
        from tensorboardX import SummaryWriter  # imported here: only training needs it

        folder = model_dir / FOLDER
        fresh = not folder.is_dir() or not any(folder.iterdir())
        self.needs_replay = fresh and start_step > 0
        self.writer = SummaryWriter(str(folder), purge_step=None if fresh else start_step)

    def scalars(self, row: dict[str, float]) -> None:
        for key, tag in SCALARS.items():
            if row.get(key) is not None:
                self.writer.add_scalar(tag, row[key], int(row["step"]))

    def frame(self, frame: dict) -> None:
        with Image.open(io.BytesIO(frame["png"])) as image:
            array = np.asarray(image.convert("RGB"))
        self.writer.add_image("samples/fixed_latents", array, frame["step"], dataformats="HWC")

    def replay(self, history: list[dict], frames: list[dict]) -> None:
        """What a checkpoint remembers, for a folder that lost the earlier event files."""
        for row in history:
            self.scalars(row)
        for frame in frames:
            self.frame(frame)

    def close(self) -> None:
        self.writer.close()
