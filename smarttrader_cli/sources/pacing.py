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
    (after a 429) without losing the reservations already made.
    """

    def __init__(
        self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
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
