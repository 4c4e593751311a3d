"""Retry policy for HTTP APIs: which failures to retry and how long to back off."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

# 408 request timeout, 425 too early, 429 rate limited, 5xx server trouble.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RATE_LIMIT_WAIT = 60.0


class RetrySettings(Protocol):
    """The config keys of an API's retries (birdeye.*, helius.*)."""

    max_retries: int
    backoff_base_seconds: float
    backoff_max_seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff and full jitter."""

    max_retries: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def backoff(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number `attempt` (0-based); Retry-After wins, capped."""
        if retry_after is not None:
            return max(0.0, min(self.max_seconds, retry_after))
        ceiling = min(self.max_seconds, self.base_seconds * 2**attempt)
        return (rng or random).uniform(0, ceiling)

    def retryable(self, status: int) -> bool:
        """Whether an HTTP status is worth another attempt."""
        return status in RETRYABLE_STATUS

    @classmethod
    def from_config(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy an API's config section sets."""
        return cls(
            settings.max_retries, settings.backoff_base_seconds, settings.backoff_max_seconds
        )


@dataclass
class Attempts:
    """The retries one request has used under a policy: the budget both API clients share."""

    policy: RetryPolicy
    failures: int = 0

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retrying one more failure; None when the budget is spent."""
        if self.failures >= self.policy.max_retries:
            return None
        delay = self.policy.backoff(self.failures, retry_after)
        self.failures += 1
        return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
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
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def rate_limit_wait(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds a 429 asks us to wait: `Retry-After`, else `X-RateLimit-Reset`, else 1.

    `X-RateLimit-Reset` is read as a unix time when it looks like one, else as seconds.
    """
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is not None:
        return min(retry_after, MAX_RATE_LIMIT_WAIT)
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            value = float(reset)
        except ValueError:
            value = -1.0
        if value >= 1e9:  # a unix timestamp
            value -= time.time() if now is None else now
        if value >= 0:
            return min(max(value, 0.05), MAX_RATE_LIMIT_WAIT)
    return 1.0
