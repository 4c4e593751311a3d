"""The simulator's discovery endpoints: a token's top traders and the gainers list.

`GET /defi/v2/tokens/top_traders` (camelCase) and `GET /trader/gainers-losers`
(snake_case), shaped as API_CONTRACTS.md documents them: `data.items` only, no
`hasNext`, at most 10 items a page, so a short page is the last. Both are computed from
the market's own swap histories (the ones seek_by_time serves): a trader's volume, buys
and sells of a token in the time frame before the market's "now", and a wallet's FIFO
realized PnL of the sells inside a period, each at the market's price of the time.

With quirks, items carry what real ones do besides the documented fields
(`isScaledUiToken`, `multiplier`), `tags` is null on some, `volumeBuy`/`volumeSell` or
`volume` null on a few, and about one item in 30 is malformed (no wallet, or a
non-numeric figure): clients must reject that one item and keep the page.

Building the index generates every wallet's history once (seconds for the demo market,
tens of seconds for the default `st sim serve` one); `st sim serve` starts it at once.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smarttrader_cli.sim.birdeye_api import UI_AMOUNT_MODES, BadRequest, Reply, choice, paging
from smarttrader_cli.sim.market import DAY, HOUR, Market, rng_for
from smarttrader_cli.sim.trades import MALFORMED, TradeBook

PAGE_MAX = 10
TIME_FRAMES = {
    "30m": 1800,
    "1h": HOUR,
    "2h": 2 * HOUR,
    "4h": 4 * HOUR,
    "6h": 6 * HOUR,
    "8h": 8 * HOUR,
    "12h": 12 * HOUR,
    "24h": DAY,
}
PERIODS = ("yesterday", "today", "1W")
SORT_TYPES = ("desc", "asc")
NULL_TAGS_SHARE = 0.2
NULL_FIGURE_SHARE = 0.03
MALFORMED_SHARE = 1 / 30


@dataclass
class _Trader:
    """One wallet's trading of one token inside a time frame."""

    volume: float = 0.0
    volume_buy: float = 0.0
    volume_sell: float = 0.0
    buys: int = 0
    sells: int = 0


@dataclass
class _Period:
    """One wallet's trading inside a period: FIFO realized PnL, USD volume, swaps."""

    pnl: float = 0.0
    volume: float = 0.0
    trades: int = 0


@dataclass
class DiscoveryIndex:
    """Recent swaps per token and per-period PnL per wallet, built once, on first use."""

    market: Market
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _recent: dict[str, list[tuple[int, str, str, float]]] | None = None
    _periods: dict[str, dict[str, _Period]] | None = None

    def period_bounds(self, period: str) -> tuple[int, int]:
        """[start, end) of a gainers period: UTC yesterday, today so far, the last 7 days."""
        now = self.market.end_time
        midnight = now // DAY * DAY
        return {
            "yesterday": (midnight - DAY, midnight),
            "today": (midnight, now),
            "1W": (now - 7 * DAY, now),
        }[period]

    def build(self) -> None:
        """Walk every wallet's history once (idempotent, thread-safe)."""
        with self._lock:
            if self._recent is not None:
                return
            m = self.market
            book = TradeBook(m, cache_size=1)
            recent: dict[str, list[tuple[int, str, str, float]]] = defaultdict(list)
            periods: dict[str, dict[str, _Period]] = {p: {} for p in PERIODS}
            bounds = {p: self.period_bounds(p) for p in PERIODS}
            since = m.end_time - DAY
            for wallet in m.wallets:
                trades = [tr for tr in book.history(wallet.address) if not tr.flags & MALFORMED]
                lots: dict[int, deque[list[float]]] = defaultdict(deque)
                for tr in reversed(trades):  # oldest first
                    gave = tr.from_raw / 10 ** m.tokens[tr.from_token].decimals
                    got = tr.to_raw / 10 ** m.tokens[tr.to_token].decimals
                    usd = gave * m.price(tr.from_token, tr.t)
                    realized = self._fifo(lots, tr.from_token, gave, tr.to_token, got, tr.t)
                    for period, (lo, hi) in bounds.items():
                        if lo <= tr.t < hi:
                            row = periods[period].setdefault(wallet.address, _Period())
                            row.pnl += realized
                            row.volume += usd
                            row.trades += 1
                    if tr.t >= since:
                        for index, side in ((tr.from_token, "sell"), (tr.to_token, "buy")):
                            if m.tokens[index].kind != "quote":
                                recent[m.tokens[index].address].append(
                                    (tr.t, wallet.address, side, usd)
                                )
            self._recent, self._periods = dict(recent), periods

    def _fifo(
        self,
        lots: dict[int, deque[list[float]]],
        gave_token: int,
        gave: float,
        got_token: int,
        got: float,
        t: int,
    ) -> float:
        """Match a swap against the wallet's open lots; its realized USD PnL."""
        m = self.market
        realized = 0.0
        if m.tokens[gave_token].kind != "quote":
            price = m.price(gave_token, t)
            queue, left = lots[gave_token], gave
            while queue and left > 1e-12:
                lot = queue[0]
                take = min(lot[0], left)
                realized += take * (price - lot[1])
                lot[0] -= take
                left -= take
                if lot[0] <= 1e-12:
                    queue.popleft()
        if m.tokens[got_token].kind != "quote":
            lots[got_token].append([got, m.price(got_token, t)])
        return realized

    def top_traders(self, mint: str, seconds: int) -> dict[str, _Trader]:
        """Each wallet's trading of `mint` in the last `seconds` before the market's now."""
        self.build()
        assert self._recent is not None
        since = self.market.end_time - seconds
        out: dict[str, _Trader] = {}
        for t, wallet, side, usd in self._recent.get(mint, ()):
            if t < since:
                continue
            row = out.setdefault(wallet, _Trader())
            row.volume += usd
            if side == "buy":
                row.buys += 1
                row.volume_buy += usd
            else:
                row.sells += 1
                row.volume_sell += usd
        return out

    def gainers(self, period: str) -> dict[str, _Period]:
        """Each wallet's PnL, volume and swaps in a period."""
        self.build()
        assert self._periods is not None
        return self._periods[period]


def _messy(item: dict[str, Any], market: Market, *key: object) -> dict[str, Any]:
    """Null figures and malformed items at their rates (quirks only); same item each time."""
    if not market.settings.quirks:
        return item
    rng = rng_for(market.seed, "discovery-item", *key)
    if rng.random() < MALFORMED_SHARE:
        wallet_key = "owner" if "owner" in item else "address"
        if rng.random() < 0.5:
            item[wallet_key] = None
        else:
            item["volume"] = "n/a"
    return item


def top_traders(market: Market, index: DiscoveryIndex, params: Mapping[str, str]) -> Reply:
    """GET /defi/v2/tokens/top_traders."""
    mint = params.get("address")
    if not mint:
        raise BadRequest("address is required")
    frame = choice(params, "time_frame", tuple(TIME_FRAMES), "24h")
    sort_by = choice(params, "sort_by", ("volume", "trade"), "volume")
    sort_type = choice(params, "sort_type", SORT_TYPES, "desc")
    choice(params, "ui_amount_mode", UI_AMOUNT_MODES, "scaled")
    offset, limit = paging(params, PAGE_MAX)
    if mint not in market.by_address:
        return 200, {"success": True, "data": {"items": []}}
    traders = index.top_traders(mint, TIME_FRAMES[frame])

    def key(item: tuple[str, _Trader]) -> tuple[float, str]:
        wallet, row = item
        return (row.volume if sort_by == "volume" else row.buys + row.sells), wallet

    ranked = sorted(traders.items(), key=key, reverse=sort_type == "desc")
    quirks = market.settings.quirks
    items = []
    for position, (wallet, row) in enumerate(ranked[offset : offset + limit], start=offset):
        rng = rng_for(market.seed, "top-trader", mint, frame, wallet)
        item: dict[str, Any] = {
            "tokenAddress": mint,
            "owner": wallet,
            "tags": [],
            "type": frame,
            "volume": row.volume,
            "trade": row.buys + row.sells,
            "tradeBuy": row.buys,
            "tradeSell": row.sells,
            "volumeBuy": row.volume_buy,
            "volumeSell": row.volume_sell,
        }
        if quirks:
            item["isScaledUiToken"] = False
            item["multiplier"] = None
            if rng.random() < NULL_TAGS_SHARE:
                item["tags"] = None
            if rng.random() < NULL_FIGURE_SHARE:
                item["volumeBuy"] = item["volumeSell"] = None
        items.append(_messy(item, market, "top", mint, frame, position))
    return 200, {"success": True, "data": {"items": items}}


def gainers_losers(market: Market, index: DiscoveryIndex, params: Mapping[str, str]) -> Reply:
    """GET /trader/gainers-losers."""
    period = choice(params, "type", PERIODS, "1W")
    choice(params, "sort_by", ("PnL",), "PnL")
    sort_type = choice(params, "sort_type", SORT_TYPES, "desc")
    offset, limit = paging(params, PAGE_MAX)
    rows = index.gainers(period)
    ranked = sorted(rows.items(), key=lambda kv: (kv[1].pnl, kv[0]), reverse=sort_type == "desc")
    items = []
    for position, (wallet, row) in enumerate(ranked[offset : offset + limit], start=offset):
        item: dict[str, Any] = {
            "network": "solana",
            "address": wallet,
            "pnl": row.pnl,
            "trade_count": row.trades,
            "volume": row.volume,
        }
        rng = rng_for(market.seed, "gainer", period, wallet)
        if market.settings.quirks and rng.random() < NULL_FIGURE_SHARE:
            item["volume"] = None
        items.append(_messy(item, market, "gainers", period, sort_type, position))
    return 200, {"success": True, "data": {"items": items}}
