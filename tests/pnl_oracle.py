"""Test-only oracle: docs/pnl.md computed the obvious way, one lot deque per (wallet, token).

Deliberately naive (Python loops, a deque of lots) so that it is easy to check by eye;
the engines must agree with it on every column.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ALL_TOKENS = "ALL_TOKENS"
EPS = 1e-9


def _usable_price(p: Any) -> float | None:
    if p is None:
        return None
    p = float(p)
    return p if math.isfinite(p) and p > 0 else None


def _valid_amount(a: Any) -> bool:
    return a is not None and math.isfinite(float(a)) and float(a) > 0


@dataclass
class Leg:
    wallet: str
    token: str
    is_buy: bool
    qty: float
    value: float | None  # USD, None = unpriced
    time: int
    order: tuple[Any, ...]


def dedupe(trades: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per natural key: the one with the latest fetched_at."""
    best: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for t in trades:
        key = (
            t["tx_hash"],
            t["ins_index"],
            t["inner_ins_index"],
            t.get("fill_id", ""),
            t["wallet_address"],
        )
        old = best.get(key)
        if old is None or _fetched(t) > _fetched(old):
            best[key] = t
    return list(best.values())


def _fetched(t: Mapping[str, Any]) -> datetime:
    return t.get("fetched_at") or datetime.min.replace(tzinfo=UTC)


def is_valid(t: Mapping[str, Any]) -> bool:
    """docs/pnl.md §1.2: reject bad amounts, missing tokens, same token both sides."""
    return (
        _valid_amount(t.get("from_amount"))
        and _valid_amount(t.get("to_amount"))
        and t.get("from_token_address") is not None
        and t.get("to_token_address") is not None
        and t["from_token_address"] != t["to_token_address"]
    )


def legs_of(t: Mapping[str, Any], quotes: set[str]) -> list[Leg]:
    """The buy/sell legs of one valid swap (docs/pnl.md §1.4-1.5)."""
    fa, ta = float(t["from_amount"]), float(t["to_amount"])
    fp, tp = _usable_price(t.get("from_price_usd")), _usable_price(t.get("to_price_usd"))
    fv = fa * fp if fp is not None else None
    tv = ta * tp if tp is not None else None
    tx = t["tx_hash"] + (":" + t["fill_id"] if t.get("fill_id") else "")
    order = (t["block_unix_time"], tx, t["ins_index"], t["inner_ins_index"])
    out = []
    if t["to_token_address"] not in quotes:
        value = tv if tv is not None else fv
        out.append(
            Leg(t["wallet_address"], t["to_token_address"], True, ta, value,
                t["block_unix_time"], order)
        )  # fmt: skip
    if t["from_token_address"] not in quotes:
        value = fv if fv is not None else tv
        out.append(
            Leg(t["wallet_address"], t["from_token_address"], False, fa, value,
                t["block_unix_time"], order)
        )  # fmt: skip
    return out


@dataclass
class TokenBook:
    lots: deque[list[float]] = field(default_factory=deque)  # [qty, unit_cost, time]
    buys: int = 0
    sells: int = 0
    counted_sells: int = 0
    winning: int = 0
    bought: float = 0.0
    sold: float = 0.0
    matched_cost: float = 0.0
    realized: float = 0.0
    matched_qty: float = 0.0
    holding_qty_seconds: float = 0.0
    unmatched: float = 0.0
    unpriced: int = 0
    first: int | None = None
    last: int | None = None
    log: list[dict[str, Any]] = field(default_factory=list)  # every priced leg's outcome

    def buy(self, leg: Leg) -> None:
        assert leg.value is not None
        self.log.append({"t": leg.time, "buy": True, "value": leg.value})
        self.buys += 1
        self.bought += leg.value
        self.lots.append([leg.qty, leg.value / leg.qty, float(leg.time)])

    def sell(self, leg: Leg) -> None:
        assert leg.value is not None
        self.sells += 1
        self.sold += leg.value
        need, cost, matched, held = leg.qty, 0.0, 0.0, 0.0
        while need > 0 and self.lots:
            lot = self.lots[0]
            take = min(need, lot[0])
            cost += take * lot[1]
            held += take * (leg.time - lot[2])
            matched += take
            need -= take
            lot[0] -= take
            if lot[0] <= 0:
                self.lots.popleft()
        self.unmatched += leg.qty - matched
        proceeds = leg.value * matched / leg.qty
        pnl = proceeds - cost
        self.realized += pnl
        self.matched_cost += cost
        self.matched_qty += matched
        self.holding_qty_seconds += held
        counts = matched > EPS * leg.qty
        wins = counts and pnl > EPS * proceeds
        self.counted_sells += counts
        self.winning += wins
        self.log.append(
            {"t": leg.time, "buy": False, "value": leg.value, "qty": leg.qty, "matched": matched,
             "cost": cost, "proceeds": proceeds, "pnl": pnl, "counts": counts, "wins": wins}
        )  # fmt: skip

    @property
    def open_qty(self) -> float:
        return sum((lot[0] for lot in self.lots), 0.0)

    @property
    def open_cost(self) -> float:
        return sum((lot[0] * lot[1] for lot in self.lots), 0.0)


def latest_prices(metrics: Iterable[Mapping[str, Any]], legs: list[Leg]) -> dict[str, float]:
    """docs/pnl.md §5: latest usable snapshot price, else the last priced leg's unit value."""
    prices: dict[str, tuple[Any, float]] = {}
    for leg in legs:
        if leg.value is None:
            continue
        key = (*leg.order, leg.wallet)
        if leg.token not in prices or key > prices[leg.token][0]:
            prices[leg.token] = (key, leg.value / leg.qty)
    snap: dict[str, tuple[datetime, float]] = {}
    for m in metrics:
        p = _usable_price(m.get("price"))
        if p is None:
            continue
        tok = m["token_address"]
        if tok not in snap or m["snapshot_at"] > snap[tok][0]:
            snap[tok] = (m["snapshot_at"], p)
    out = {tok: v[1] for tok, v in prices.items()}
    out.update({tok: v[1] for tok, v in snap.items()})
    return out


def _freq(trades: int, first: int | None, last: int | None) -> float:
    if trades == 0 or first is None or last is None:
        return 0.0
    return trades / max(1.0, (last - first) / 86400.0)


def _ts(t: int | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def oracle_pnl(
    trades: Iterable[Mapping[str, Any]],
    metrics: Iterable[Mapping[str, Any]] = (),
    quote_assets: Iterable[str] = (),
    min_leg_usd: float = 0.0,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of silver.wallet_pnl (without calculated_at/run_id) keyed by (wallet, token)."""
    return _oracle(trades, metrics, quote_assets, min_leg_usd)[0]


def _oracle(
    trades: Iterable[Mapping[str, Any]],
    metrics: Iterable[Mapping[str, Any]],
    quote_assets: Iterable[str],
    min_leg_usd: float,
) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], TokenBook]]:
    quotes = set(quote_assets)
    rows = dedupe(trades)
    wallets = {t["wallet_address"] for t in rows}
    all_legs = [leg for t in rows if is_valid(t) for leg in legs_of(t, quotes)]
    prices = latest_prices(metrics, all_legs)
    books: dict[tuple[str, str], TokenBook] = {}
    for leg in sorted(all_legs, key=lambda lg: lg.order):
        book = books.setdefault((leg.wallet, leg.token), TokenBook())
        if leg.value is None:
            book.unpriced += 1
            continue
        if leg.value < min_leg_usd:
            continue
        book.first = leg.time if book.first is None else book.first
        book.last = leg.time
        (book.buy if leg.is_buy else book.sell)(leg)

    out: dict[tuple[str, str], dict[str, Any]] = {}
    for (wallet, token), b in books.items():
        if b.buys + b.sells + b.unpriced == 0:
            continue  # only dust legs
        open_qty = b.open_qty
        value = open_qty * prices[token] if open_qty != 0 else 0.0
        unrealized = value - b.open_cost
        total = b.realized + unrealized
        out[(wallet, token)] = {
            "realized_pnl": b.realized,
            "unrealized_pnl": unrealized,
            "total_pnl": total,
            "trade_count": b.buys + b.sells,
            "buy_count": b.buys,
            "sell_count": b.sells,
            "winning_sells": b.winning,
            "win_rate": b.winning / b.counted_sells if b.counted_sells else None,
            "total_bought": b.bought,
            "total_sold": b.sold,
            "matched_cost": b.matched_cost,
            "roi": total / b.bought if b.bought > 0 else None,
            "current_position_tokens": open_qty,
            "current_position_cost_basis": b.open_cost,
            "current_position_value": value,
            "avg_holding_time_hours": (
                b.holding_qty_seconds / b.matched_qty / 3600.0 if b.matched_qty > 0 else None
            ),
            "trade_frequency_daily": _freq(b.buys + b.sells, b.first, b.last),
            "first_trade_at": _ts(b.first),
            "last_trade_at": _ts(b.last),
            "unmatched_sell_qty": b.unmatched,
            "unpriced_leg_count": b.unpriced,
            "_counted_sells": b.counted_sells,
        }
    for wallet in wallets:
        toks = [r for (w, _), r in out.items() if w == wallet]
        out[(wallet, ALL_TOKENS)] = _portfolio(toks)
    for r in out.values():
        r.pop("_counted_sells", None)
    return out, books


def _portfolio(toks: list[dict[str, Any]]) -> dict[str, Any]:
    def s(col: str) -> Any:
        return sum(r[col] for r in toks)

    firsts = [r["first_trade_at"] for r in toks if r["first_trade_at"] is not None]
    lasts = [r["last_trade_at"] for r in toks if r["last_trade_at"] is not None]
    first, last = (min(firsts) if firsts else None), (max(lasts) if lasts else None)
    bought, total, counted = s("total_bought"), s("total_pnl"), s("_counted_sells")
    weighted = [
        (r["avg_holding_time_hours"], r["matched_cost"])
        for r in toks
        if r["avg_holding_time_hours"] is not None
    ]
    wsum = sum(w for _, w in weighted)
    trades = s("trade_count")
    return {
        "realized_pnl": s("realized_pnl"),
        "unrealized_pnl": s("unrealized_pnl"),
        "total_pnl": total,
        "trade_count": trades,
        "buy_count": s("buy_count"),
        "sell_count": s("sell_count"),
        "winning_sells": s("winning_sells"),
        "win_rate": s("winning_sells") / counted if counted else None,
        "total_bought": bought,
        "total_sold": s("total_sold"),
        "matched_cost": s("matched_cost"),
        "roi": total / bought if bought > 0 else None,
        "current_position_tokens": None,
        "current_position_cost_basis": s("current_position_cost_basis"),
        "current_position_value": s("current_position_value"),
        "avg_holding_time_hours": (
            sum(h * w for h, w in weighted) / wsum if weighted and wsum > 0 else None
        ),
        "trade_frequency_daily": _freq(
            trades,
            int(first.timestamp()) if first else None,
            int(last.timestamp()) if last else None,
        ),
        "first_trade_at": first,
        "last_trade_at": last,
        "unmatched_sell_qty": None,
        "unpriced_leg_count": s("unpriced_leg_count"),
        "_counted_sells": counted,
    }


WINDOW_SECONDS = {"h": 3600, "d": 86400}


def window_length(name: str) -> int | None:
    """'7d' -> 604800 seconds, 'all' -> None."""
    return None if name == "all" else int(name[:-1]) * WINDOW_SECONDS[name[-1]]


def oracle_windows(
    trades: Iterable[Mapping[str, Any]],
    metrics: Iterable[Mapping[str, Any]] = (),
    quote_assets: Iterable[str] = (),
    min_leg_usd: float = 0.0,
    windows: Iterable[str] = ("1d", "7d", "30d", "all"),
    as_of: int = 0,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Rows of silver.wallet_pnl_windows keyed by (wallet, token, window), by filtering each
    (wallet, token)'s FIFO log: a leg is in a window when as_of - length < t <= as_of."""
    trades = list(trades)
    pnl, books = _oracle(trades, metrics, quote_assets, min_leg_usd)
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name in windows:
        length = window_length(name)
        start = None if length is None else as_of - length
        for (wallet, token), row in pnl.items():
            if token == ALL_TOKENS:
                continue
            book = books[(wallet, token)]
            log = [
                e
                for e in book.log
                if length is None or (start is not None and start < e["t"] <= as_of)
            ]
            out[(wallet, token, name)] = _window_row(log, row, name, start, as_of)
        for wallet in {w for (w, tok) in pnl if tok == ALL_TOKENS}:
            toks = [r for (w, _, n), r in out.items() if w == wallet and n == name]
            out[(wallet, ALL_TOKENS, name)] = _window_portfolio(toks, start, as_of)
    return out  # the _-prefixed helper figures stay: tolerances are scaled by them


def _window_row(
    log: list[dict[str, Any]], row: dict[str, Any], name: str, start: int | None, end: int
) -> dict[str, Any]:
    sells = [e for e in log if not e["buy"]]
    buys = [e for e in log if e["buy"]]
    realized = sum((e["pnl"] for e in sells), 0.0)
    bought = sum((e["value"] for e in buys), 0.0)
    sold = sum((e["value"] for e in sells), 0.0)
    cost = sum((e["cost"] for e in sells), 0.0)
    sold_qty = sum((e["qty"] for e in sells), 0.0)
    matched = sum((e["matched"] for e in sells), 0.0)
    counted = sum(1 for e in sells if e["counts"])
    wins = sum(1 for e in sells if e["wins"])
    open_cost = row["current_position_cost_basis"]
    total = realized + row["unrealized_pnl"]
    capital = row["total_bought"] if name == "all" else cost + open_cost
    return {
        "window_start": _ts(start),
        "window_end": _ts(end),
        "realized_pnl": realized,
        "unrealized_pnl": row["unrealized_pnl"],
        "total_pnl": total,
        "trade_count": len(log),
        "buy_count": len(buys),
        "sell_count": len(sells),
        "winning_sells": wins,
        "win_rate": wins / counted if counted else None,
        "roi": total / capital if capital > EPS * row["total_bought"] else None,
        "volume_usd": bought + sold,
        "total_bought": bought,
        "total_sold": sold,
        "matched_cost": cost,
        "sold_qty": sold_qty,
        "matched_qty": matched,
        "basis_coverage": matched / sold_qty if sells else None,
        "closed_positions": 1 if counted else 0,
        "counted_sells": counted,
        "matched_proceeds": sum((e["proceeds"] for e in sells), 0.0),
        "_counted": counted,
        "_proceeds": sum((e["proceeds"] for e in sells), 0.0),
        "_capital": capital,
        "_all_bought": row["total_bought"],
    }


_SUMMED = (
    "realized_pnl", "unrealized_pnl", "total_pnl", "trade_count", "buy_count", "sell_count",
    "winning_sells", "volume_usd", "total_bought", "total_sold", "matched_cost",
    "closed_positions",
)  # fmt: skip


def _window_portfolio(toks: list[dict[str, Any]], start: int | None, end: int) -> dict[str, Any]:
    def s(col: str) -> Any:
        return sum((r[col] for r in toks), 0)

    counted, capital, sold = s("_counted"), s("_capital"), s("total_sold")
    all_bought = s("_all_bought")
    return {
        "window_start": _ts(start),
        "window_end": _ts(end),
        **{col: s(col) for col in _SUMMED},
        "win_rate": s("winning_sells") / counted if counted else None,
        "roi": s("total_pnl") / capital if capital > EPS * all_bought else None,
        "sold_qty": None,
        "matched_qty": None,
        "basis_coverage": s("_proceeds") / sold if s("sell_count") and sold > 0 else None,
        "counted_sells": counted,
        "matched_proceeds": s("_proceeds"),
        "_counted": counted,
        "_proceeds": s("_proceeds"),
        "_capital": capital,
        "_all_bought": all_bought,
    }
