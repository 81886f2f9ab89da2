"""Our own retry loop for platform calls: exponential backoff with full jitter, honouring Retry-After.

Library retry loops are avoided on purpose: google-api-python-client's `num_retries` can resend an
already-consumed chunk, and a retry storm against a quota error only burns more quota.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests

from montage_pipeline.publishing.errors import TransientPostError

log = logging.getLogger(__name__)
T = TypeVar("T")

NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    ConnectionError,
    TimeoutError,
)


def with_backoff(
    call: Callable[[], T],
    what: str,
    attempts: int = 5,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`; on a transient error wait and repeat, up to `attempts` times, then re-raise."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransientPostError as exc:
            if attempt == attempts:
                raise
            wait = (
                exc.retry_after_s if exc.retry_after_s is not None else random.uniform(0, base_s * 2**attempt)
            )
            log.warning("%s: %s; retry %d/%d in %.1fs", what, exc, attempt, attempts - 1, min(wait, cap_s))
            sleep(min(wait, cap_s))
        except NETWORK_ERRORS as exc:
            if attempt == attempts:
                raise TransientPostError(f"{what}: {type(exc).__name__}") from None
            wait = random.uniform(0, base_s * 2**attempt)
            log.warning("%s: %s; retry %d/%d in %.1fs", what, type(exc).__name__, attempt, attempts - 1, wait)
            sleep(min(wait, cap_s))
    raise AssertionError("unreachable")
