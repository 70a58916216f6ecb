"""A moving rate and an ETA for loops that run until a step count (training)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


def format_duration(seconds: float) -> str:
    """`75` -> `1m15s`; short and readable in a log line."""
    seconds = max(0, round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass
class MovingRate:
    """Units per second over the last `window` updates.

    The first update only starts the clock, so slow warm-up work (the first
    training step compiles and allocates) never inflates the ETA.
    """

    window: int = 20
    _points: deque = field(default_factory=deque)

    def update(self, done: int, now: float | None = None) -> None:
        self._points.append((time.monotonic() if now is None else now, done))
        while len(self._points) > self.window + 1:
            self._points.popleft()

    @property
    def rate(self) -> float:
        if len(self._points) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._points[0], self._points[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, remaining: int) -> str:
        rate = self.rate
        return format_duration(remaining / rate) if rate > 0 else "?"
