"""Readers several stages share, so each question about the lake has one answer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_METRICS, TableSpec

if TYPE_CHECKING:
    from smarttrader_cli.lake.store import Lake

RANK_HINT = "run `st gold rank` first"


def not_written(spec: TableSpec, hint: str | None = None) -> str:
    """The message for a table that was never written, with what to run first."""
    return f"table {spec.name} has not been written yet" + (f"; {hint}" if hint else "")


def require(lake: Lake, spec: TableSpec, hint: str) -> None:
    """StageError naming what to run first when a stage's input table was never written."""
    if not lake.exists(spec):
        raise StageError(not_written(spec, hint))


def usable_price(price: float | None) -> bool:
    """A price a valuation may use: finite and positive (as in engines/sql/*/03_prices.sql)."""
    return price is not None and math.isfinite(price) and price > 0


def latest_prices(lake: Lake) -> dict[str, float]:
    """Token address → its newest usable snapshot price (empty if no snapshot exists)."""
    if not lake.exists(TOKEN_METRICS):
        return {}
    table = lake.read(TOKEN_METRICS, columns=["token_address", "snapshot_at", "price"])
    latest: dict[str, tuple[Any, float]] = {}
    for token, at, price in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        if not usable_price(price):
            continue
        if token not in latest or at > latest[token][0]:
            latest[token] = (at, float(price))
    return {token: price for token, (_, price) in latest.items()}


def smart_wallets(lake: Lake) -> set[str]:
    """The addresses in gold.smart_wallets (none before the first ranking)."""
    if not lake.exists(SMART_WALLETS):
        return set()
    return set(lake.read(SMART_WALLETS, columns=["wallet_address"]).column(0).to_pylist())


def ranked_wallets(lake: Lake, limit: int | None = None) -> list[dict[str, Any]]:
    """gold.smart_wallets as rows, best rank first (the first `limit`); StageError if unbuilt."""
    require(lake, SMART_WALLETS, RANK_HINT)
    rows = lake.read(SMART_WALLETS).to_pylist()
    rows.sort(key=lambda r: (r["rank"] is None, r["rank"], r["wallet_address"]))
    return rows if limit is None else rows[:limit]
