"""What `st bronze prices` and its price book read: what is new, not the table's whole history."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.config.schema import Config
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import TOKEN_PRICES
from smarttrader_cli.stages.prices import WSOL, PriceBook, traded_mints
from tests.stream_support import append_bronze, helius_events

NEW_MINT = "NewMint1111111111111111111111111111111111111"


def _with_mint(event: dict[str, Any], mint: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["signature"] = "9" * 80 + event["signature"][80:]
    for account in event["accountData"]:
        for change in account.get("tokenBalanceChanges") or []:
            change["mint"] = mint
    return event


def _commit_prices(lake: Lake, cursor: tuple[str, int] | None) -> None:
    """What the stage commits after a lookup: price points, with the cursor."""
    point = pa.table({"token_address": ["X"], "unix_time": [1], "price_usd": [1.0]})
    lake.merge(
        TOKEN_PRICES,
        point,
        CommitMeta("r", "bronze.prices", "h"),
        app_transactions=[cursor] if cursor else (),
    )


def test_traded_tokens_come_from_the_events_added_since_the_last_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    events = helius_events(100)
    append_bronze(lake, events)
    since = datetime.now(UTC) - timedelta(hours=48)
    with caplog.at_level(logging.INFO, logger="st.bronze.prices"):
        first, cursor = traded_mints(lake, since, set())
    assert first and "bronze.token_prices is new" in caplog.text  # the lookback's events
    _commit_prices(lake, cursor)
    # stamped long before its commit landed: before `since` of the next run, yet new
    late = _with_mint(events[0], NEW_MINT)
    append_bronze(lake, [late], ingested_at=datetime.now(UTC) - timedelta(days=3))
    again, cursor = traded_mints(lake, datetime.now(UTC) - timedelta(minutes=1), set())
    assert again == [NEW_MINT]  # only the new event's mint, the old ones are not read again
    _commit_prices(lake, cursor)
    assert traded_mints(lake, datetime.now(UTC), set())[0] == []


def test_a_price_book_read_since_a_time_prices_as_the_whole_table_does(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    start, step, day = 1_700_000_000, 300, 86_400
    for month in range(12):  # a year of 5-minute SOL points, one commit a month
        times = [t for t in range(start + month * 30 * day, start + (month + 1) * 30 * day, step)]
        times = [t for t in times if not start + 100 * day <= t < start + 101 * day]  # a gap
        prices = [100.0 + (t - start) / day for t in times]
        lake.append(
            TOKEN_PRICES,
            pa.table(
                {"token_address": [WSOL] * len(times), "unix_time": times, "price_usd": prices}
            ),
            CommitMeta("r", "bronze.prices", "h"),
        )
    config = Config().prices
    full = PriceBook.from_lake(lake, config)
    since = start + 358 * day
    recent = PriceBook.from_lake(lake, config, since=since)
    assert len(recent.series[WSOL][0]) < len(full.series[WSOL][0]) / 50
    now = [since + config.max_staleness_seconds + k * 7_001 for k in range(100)]
    assert [recent.price_at(WSOL, t) for t in now] == [full.price_at(WSOL, t) for t in now]
    assert recent.loaded_from == since  # recent times need no older point
    old = [start + k * 91_234 for k in range(150)]  # late events, the gap among them
    assert [recent.price_at(WSOL, t) for t in old] == [full.price_at(WSOL, t) for t in old]
    assert recent.loaded_from is None
    assert any(price is None for price, _ in (full.price_at(WSOL, t) for t in old))
