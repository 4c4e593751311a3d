"""What `st follow` keeps in memory instead of reading it per batch: the ranked wallets,
the prices that value legs, and the ranked wallets' recent buys a confluence looks back at.

The first two are re-read every `follow.refresh_seconds` (they change by cron: `st gold
rank`, `st bronze prices`); the buys are the ones follow parsed itself, seeded at start
from silver.webhook_swaps, and pruned to the confluence window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smarttrader_cli.alerts.rules import RankedWallet
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.stages.silver_webhooks import Valuation


@dataclass(frozen=True)
class Knowledge:
    """The ranked wallets and the valuation, as read at `loaded_at` (monotonic seconds)."""

    ranked: dict[str, RankedWallet]
    valuation: Valuation
    loaded_at: float

    @classmethod
    def load(cls, lake: Lake, config: Config, now: datetime | None = None) -> Knowledge:
        """Read both from the lake (price points of the `prices.lookback_hours` before now)."""
        from smarttrader_cli.alerts.evaluate import ranked_wallets
        from smarttrader_cli.stages.silver_webhooks import Valuation

        now = now or datetime.now(UTC)
        since = now - timedelta(hours=config.prices.lookback_hours)
        return cls(ranked_wallets(lake), Valuation.from_lake(lake, config, since), time.monotonic())


class RecentBuys:
    """The ranked wallets' buy legs of the last `window` (thread-safe), oldest first."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._legs: deque[Mapping[str, Any]] = deque()
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def add(self, legs: Iterable[Mapping[str, Any]], ranked: Mapping[str, Any]) -> None:
        """Keep the buys among `legs` by `ranked` wallets (each leg once), drop the old."""
        with self._lock:
            for leg in legs:
                if leg.get("direction") != "buy" or leg.get("wallet") not in ranked:
                    continue
                if leg.get("event_time") is None:
                    continue
                key = (str(leg["signature"]), str(leg["wallet"]), str(leg["token_address"]))
                if key in self._seen:
                    continue
                self._seen.add(key)
                self._legs.append(leg)
            self._prune()

    def since(self, since: datetime, tokens: set[str]) -> list[Mapping[str, Any]]:
        """The kept buys of `tokens` at or after `since` (the evaluator's `context`)."""
        with self._lock:
            return [
                leg
                for leg in self._legs
                if leg["token_address"] in tokens and leg["event_time"] >= since
            ]

    def __len__(self) -> int:
        return len(self._legs)

    def _prune(self) -> None:
        # Event times are the chain's, not ours: prune by the newest kept, not the clock.
        if not self._legs:
            return
        newest = max(leg["event_time"] for leg in self._legs)
        cutoff = min(newest, datetime.now(UTC)) - self.window
        kept = [leg for leg in self._legs if leg["event_time"] >= cutoff]
        if len(kept) != len(self._legs):
            self._legs = deque(kept)
            self._seen = {
                (str(leg["signature"]), str(leg["wallet"]), str(leg["token_address"]))
                for leg in kept
            }
