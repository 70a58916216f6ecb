"""What a person watches while a GAN trains: interval means, progress frames, TensorBoard.

The history rows and frames travel inside the checkpoint, so a resumed run's
record continues the same curves and the same sequence of frames.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from src.common.rate import MovingRate
from src.gan.watching.progress_frames import (
    fixed_latents,
    render_frame,
    write_animation,
    write_frames,
)
from src.gan.watching.tensorboard_log import TensorBoardLog

log = logging.getLogger(__name__)


class TrainingRecord:
    """Sums each step's losses on the device and reads them once per logging interval."""

    def __init__(
        self, model_dir: Path, seed: int, latent_dim: int, aug_prob: float, is_main: bool
    ) -> None:
        self.model_dir, self.seed, self.aug_prob, self.is_main = model_dir, seed, aug_prob, is_main
        self.latents = fixed_latents(seed, latent_dim)
        self.history: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.board: TensorBoardLog | None = None
        self.gp_skipped = 0  # gradient penalties that were not finite, over the whole run
        self._reset()

    def start(self, saved: dict[str, Any] | None, start_step: int) -> None:
        """Continues the record a checkpoint holds; opens the event files (main process)."""
        if saved is not None:
            self.history = list(saved["history"])
            self.frames = list(saved.get("frames", []))
            self.gp_skipped = sum(row.get("gp_skipped", 0) for row in self.history)
        if not self.is_main:
            return
        self.board = TensorBoardLog(self.model_dir, start_step)
        if self.board.needs_replay:
            self.board.replay(self.history, self.frames)
        write_frames(self.model_dir, self.frames)

    def add(self, losses: tuple[torch.Tensor | None, ...], gp_skipped: bool = False) -> None:
        d_loss, g_loss, gp, aux = losses
        if gp_skipped:
            self.gp_skipped += 1
            self._gp_skipped += 1
        values = torch.stack([d_loss, g_loss, aux]).float()
        self._sums = values if self._sums is None else self._sums + values
        self._steps += 1
        if gp is not None:
            self._gp = gp.float() if self._gp is None else self._gp + gp
            self._gp_steps += 1

    def close_interval(self, step: int, rate: MovingRate, seconds: float) -> dict[str, Any]:
        """The interval's mean losses as a history row (synchronises with the device once)."""
        d_loss, g_loss, aux = (value / self._steps for value in self._sums.tolist())
        gp = float(self._gp) / self._gp_steps if self._gp_steps else None
        if self._gp_skipped:
            log.warning(
                "step %d: the gradient penalty was not finite on %d step(s) of this interval and "
                "was left out (%d in this run)",
                step,
                self._gp_skipped,
                self.gp_skipped,
            )
        self._reset()
        row = {
            "step": step,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "aux": aux,
            "gp": gp,
            "gp_skipped": self._gp_skipped,
            "aug_prob": self.aug_prob,
            "steps_per_second": rate.rate,
            "seconds": seconds,
        }
        self.history.append(row)
        if self.board is not None:
            self.board.scalars(row)
        return row

    def _reset(self) -> None:
        self._sums, self._gp, self._steps, self._gp_steps, self._gp_skipped = None, None, 0, 0, 0

    def snapshot(self, gan: torch.nn.Module, step: int) -> None:
        """Renders the fixed latents now and keeps the frame (main process)."""
        if not self.is_main or (self.frames and self.frames[-1]["step"] == step):
            return
        frame = {"step": step, "png": render_frame(gan, self.latents, step, self.seed)}
        self.frames.append(frame)
        write_frames(self.model_dir, [frame])
        if self.board is not None:
            self.board.frame(frame)

    def rewind(self, step: int) -> None:
        """Drops what came after the checkpoint a restart goes back to."""
        self.history = [row for row in self.history if row["step"] <= step]
        self.frames = [frame for frame in self.frames if frame["step"] <= step]
        self.gp_skipped = sum(row.get("gp_skipped", 0) for row in self.history)
        self._reset()

    def flush(self) -> None:
        """Writes buffered TensorBoard events to their files."""
        if self.board is not None:
            self.board.flush()

    def finish(self) -> None:
        if self.is_main and self.frames:
            write_animation(self.model_dir, self.frames)
        if self.board is not None:
            self.board.close()
            self.board = None
