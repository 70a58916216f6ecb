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
    from google.api_core import exceptions as api_exceptions

    code = getattr(error, "code", None)
    if isinstance(error, api_exceptions.GoogleAPICallError) and code in RETRYABLE_STATUS:
        return True
    response = getattr(error, "response", None)
    if getattr(response, "status_code", None) in RETRYABLE_STATUS:
        return True
    return isinstance(error, _broken_connection_errors())


def _broken_connection_errors() -> tuple[type[BaseException], ...]:
    """Refused, reset or timed-out connections, and bodies cut off mid-stream."""
    import http.client

    import requests
    import urllib3
    from google.cloud.storage.exceptions import DataCorruption

    return (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        http.client.IncompleteRead,
        ConnectionError,
        TimeoutError,
        DataCorruption,  # a truncated body can also surface as a checksum mismatch
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
