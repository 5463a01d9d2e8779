"""What one user or one socket may ask of the server at once (settings.py sets the numbers).

Each refusal names the limit and when to try again; docs/websocket.md lists them.
"""

from __future__ import annotations

import math
import time
from collections import Counter


class FrameRate:
    """A token bucket per socket: `rate` frames a second, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()

    def wait(self) -> float:
        """0 when a frame may go through now (and count it), else the seconds to wait."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


def retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class SocketCount:
    """Open sockets per user in this process (each daphne process counts its own)."""

    def __init__(self) -> None:
        self._open: Counter = Counter()

    def open(self, user_pk, limit: int) -> bool:
        """Count one more socket for the user; False (and not counted) past the limit."""
        if self._open[user_pk] >= limit:
            return False
        self._open[user_pk] += 1
        return True

    def close(self, user_pk) -> None:
        self._open[user_pk] -= 1
        if self._open[user_pk] <= 0:
            del self._open[user_pk]


sockets = SocketCount()
