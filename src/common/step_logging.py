"""Logging set-up shared by the pipeline steps: one readable line per event."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: int = logging.INFO) -> None:
    """INFO lines with time and source on stderr, which the KFP and Vertex UIs show."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
