"""Progress lines for long loops: count, rate, ETA, at most one line per interval."""

from __future__ import annotations

import logging
import threading
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
class Progress:
    """Logs `label done/total (rate unit/s, ETA ...)` every `interval_s` seconds."""

    label: str
    total: int
    unit: str = "items"
    interval_s: float = 2.0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("progress"))
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    _last_log: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self, count: int = 1, extra: str = "") -> None:
        """Counts finished work and logs when the interval has passed or all is done (thread-safe)."""
        with self._lock:
            self.done += count
            now = time.monotonic()
            if now - self._last_log < self.interval_s and self.done < self.total:
                return
            self._last_log = now
        self.logger.info(self.line(extra))

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, extra: str = "") -> str:
        rate = self.rate
        remaining = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = format_duration(remaining) if rate > 0 else "?"
        tail = f", {extra}" if extra else ""
        return f"{self.label} {self.done}/{self.total} ({rate:.1f} {self.unit}/s, ETA {eta}){tail}"


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
