"""Retrying the failures that may pass: transient Shoal errors and NATS hiccups, with a deadline.

Permanent errors are never retried: a bad manifest stays bad.
"""

from __future__ import annotations

import nats.errors
import nats.js.errors
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential, wait_random

from shoal.errors import TransientError

_TRANSIENT_NATS = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.ServerError,
)


def is_transient(err: BaseException) -> bool:
    return isinstance(err, (TransientError, *_TRANSIENT_NATS, ConnectionError, TimeoutError))


def retrying(deadline: float = 10.0, *, initial: float = 0.05, cap: float = 1.0) -> AsyncRetrying:
    """``async for attempt in retrying(5): with attempt: ...`` retries transient failures."""
    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential(multiplier=initial, max=cap) + wait_random(0, initial),
        stop=stop_after_delay(deadline),
        reraise=True,
    )
