"""Retry policy: which answers to retry and how long to wait (protocol section 9.3)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

# 408, 409, 429 and every 5xx, as the SDK does for /interactions.
RETRYABLE_STATUS = frozenset({408, 409, 429, *range(500, 600)})


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` (wins) or `Retry-After` (seconds or HTTP-date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base * 2**attempt, minus up to `jitter` of it, capped.

    A server-sent Retry-After overrides the computed delay; one longer than
    `max_retry_after` is not waited for (the error is raised so the user hears of it).
    """

    max_retries: int = 4
    base: float = 0.5
    cap: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based) when the server gave no hint."""
        delay = min(self.cap, self.base * (2**attempt))
        return delay * (1 - random.uniform(0, self.jitter))

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to sleep before retrying, or None when no retry should be made."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)
