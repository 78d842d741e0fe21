"""The rate limit of a WebSocket's client frames: a token bucket per socket (live/consumers/base.py)."""

from __future__ import annotations

import time


class RateLimiter:
    """A token bucket per socket: `rate` frames a second, bursts of `burst`.

    A refused frame is a strike. The first strike gets a `rate_limited` error, and a client that goes on past another
    burst's worth of strikes is closed. Strikes are forgiven once the bucket is full again (the client paused).
    """

    OK, LIMITED, DROP, CLOSE = "ok", "limited", "drop", "close"

    def __init__(self, rate: float, burst: int, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.updated = clock()
        self.strikes = 0

    def check(self) -> str:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= self.burst:
            self.strikes = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return self.OK
        self.strikes += 1
        if self.strikes > self.burst:
            return self.CLOSE
        return self.LIMITED if self.strikes == 1 else self.DROP
