"""Progress lines for long loops over known work: count, rate, ETA, at most one per interval."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from src.common.rate import format_duration


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
