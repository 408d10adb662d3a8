"""One retry policy for every remote backend: exponential backoff with full jitter, `Retry-After`.

Backends translate their client's exceptions into `TransientError` (429, 5xx, timeouts, dropped
connections) or a final `EmbeddingError`; these helpers retry only the former.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from essearch.errors import EmbeddingError
from essearch.logs import MASK

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RETRY_AFTER = 120.0


class TransientError(Exception):
    """A failure worth retrying; `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RetryGate:
    """Shared by the concurrent calls of one embedder: a server's `Retry-After` holds back every
    call that starts before it has passed, not just the one that was told."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._until - time.monotonic())


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a `Retry-After` (or `retry-after-ms`) header: a number or an HTTP date."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Delay before retry number `attempt` (0-based): the server's hint, else full jitter."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER)
    return random.uniform(0, min(cap, base * (2**attempt)))


def call_with_retries(
    fn: Callable[[], T],
    *,
    max_retries: int,
    what: str,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Callable[[float], Any] = time.sleep,
    gate: RetryGate | None = None,
) -> T:
    """Call `fn`, retrying `TransientError` up to `max_retries` times (waiting out `gate`)."""
    for attempt in range(max_retries + 1):
        if gate is not None and (wait := gate.remaining()) > 0:
            sleep(wait)
        try:
            return fn()
        except TransientError as exc:
            if attempt >= max_retries:
                raise EmbeddingError(f"{what}: gave up after {attempt + 1} tries: {exc}") from None
            delay = backoff_delay(attempt, base_delay, max_delay, exc.retry_after)
            if gate is not None and exc.retry_after is not None:
                gate.hold(delay)
            log.warning("%s: %s; retry %d/%d in %.2fs", what, exc, attempt + 1, max_retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    what: str,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    gate: RetryGate | None = None,
) -> T:
    """Async twin of `call_with_retries`."""
    for attempt in range(max_retries + 1):
        if gate is not None and (wait := gate.remaining()) > 0:
            await asyncio.sleep(wait)
        try:
            return await fn()
        except TransientError as exc:
            if attempt >= max_retries:
                raise EmbeddingError(f"{what}: gave up after {attempt + 1} tries: {exc}") from None
            delay = backoff_delay(attempt, base_delay, max_delay, exc.retry_after)
            if gate is not None and exc.retry_after is not None:
                gate.hold(delay)
            log.warning("%s: %s; retry %d/%d in %.2fs", what, exc, attempt + 1, max_retries, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def mask_secret(secret: str | None) -> str:
    """What a message shows for a secret: that there is one, and not one character of it."""
    return MASK if secret else "(none)"
