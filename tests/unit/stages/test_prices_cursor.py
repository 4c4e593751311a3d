"""`st bronze prices` looks for traded tokens in the events bronze gained since its cursor."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import TOKEN_PRICES
from smarttrader_cli.stages.prices import traded_mints
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
