"""Client-side pacing: one token bucket shared by every request to an API."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` requests per second with bursts of up to `burst`, shared by threads and tasks.

    Callers reserve a slot and sleep until it comes due, so concurrent callers queue
    in order without holding a lock while they wait. `pause()` holds everyone back
    without losing the reservations already made. After a 429, `slow_down()` also
    halves the rate (down to a tenth of the configured one); each success lets
    `recover()` win a little of it back, so the pace settles just under what the
    server allows (additive increase, multiplicative decrease).
    """

    def __init__(
        self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.configured_rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one slot; returns how many seconds to wait before using it."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            return max(wait, self._paused_until - now)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` from now (the server said slow down)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def slow_down(self, seconds: float) -> None:
        """The server said 429: hold everyone back for `seconds` and halve the rate."""
        with self._lock:
            if self.configured_rate > 0:
                self.rate = max(self.configured_rate / 10, self.rate / 2)
                self._tokens = min(self._tokens, 0.0)  # no burst straight after a 429
        self.pause(seconds)

    def recover(self) -> None:
        """A request succeeded: win back 2 % of the configured rate."""
        if self.rate < self.configured_rate:
            with self._lock:
                self.rate = min(self.configured_rate, self.rate + self.configured_rate / 50)

    async def wait(self) -> None:
        """Wait for a slot (asyncio)."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def wait_sync(self) -> None:
        """Wait for a slot (threads)."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)
