"""One retry rule for every remote call: transient HTTP statuses and broken connections."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


def is_retryable(error: BaseException) -> bool:
    """Transient HTTP statuses and broken connections are worth another try."""
    import requests
    from google.api_core import exceptions as api_exceptions

    code = getattr(error, "code", None)
    if isinstance(error, api_exceptions.GoogleAPICallError) and code in RETRYABLE_STATUS:
        return True
    response = getattr(error, "response", None)
    if getattr(response, "status_code", None) in RETRYABLE_STATUS:
        return True
    return isinstance(
        error,
        (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError),
    )


def with_retries(
    action: Callable[[], T], *, what: str, attempts: int = 5, base_delay_s: float = 0.2
) -> T:
    """Runs `action()`, retrying transient failures with exponential backoff and jitter."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:
            if attempt == attempts or not is_retryable(error):
                raise
            delay = base_delay_s * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning(
                "%s failed (%s); retry %d/%d in %.2fs",
                what,
                error,
                attempt,
                attempts - 1,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")
