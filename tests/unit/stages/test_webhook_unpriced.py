"""silver.webhook_unpriced: a run values again the unpriced legs from it, not from every leg
of the lookback; it is used only while it describes silver, and otherwise rebuilt from
silver, so an incremental run still equals a full refresh row for row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.lake.maintenance import compact_table
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WEBHOOK_SWAPS, WEBHOOK_UNPRICED
from smarttrader_cli.stages import silver_webhooks, webhook_unpriced
from tests.unit.stages.test_silver_webhooks_layout import (
    META,
    MIDNIGHT,
    NOW,
    START,
    _ctx,
    _events,
    _rows,
    _sol,
)

SINCE = NOW - timedelta(hours=48)  # the stage's prices.lookback_hours before NOW


def _keyed(rows: pa.Table) -> list[dict[str, Any]]:
    return sorted(rows.to_pylist(), key=lambda r: (r["signature"], r["wallet"], r["leg"]))


def _describes_silver(lake: Lake) -> None:
    """The table holds exactly the legs of silver's unpriced events of the lookback."""
    from_silver = webhook_unpriced.still_unpriced(lake.read(WEBHOOK_SWAPS), SINCE)
    assert _keyed(lake.read(WEBHOOK_UNPRICED)) == _keyed(from_silver)


def test_runs_read_the_unpriced_legs_from_their_table_and_keep_it_equal_to_silver(
    tmp_path: Any,
) -> None:
    ctx = _ctx(tmp_path)
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))  # SOL for the first hour only
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    _describes_silver(ctx.lake)
    assert ctx.lake.read(WEBHOOK_UNPRICED).num_rows > 0
    quiet = silver_webhooks.run(ctx, now=NOW).details
    assert quiet["unpriced_from"] == WEBHOOK_UNPRICED.name and quiet["unpriced"] > 0
    _sol(ctx.lake, range(START + 5_400, START + 9_000, 60))  # late points price some
    late = silver_webhooks.run(ctx, now=NOW).details
    assert late["unpriced_from"] == WEBHOOK_UNPRICED.name and late["repriced"] > 0
    _describes_silver(ctx.lake)
    assert ctx.lake.read(WEBHOOK_UNPRICED).num_rows < quiet["unpriced"] * 10  # fewer legs
    _events(ctx.lake, 100, seed=9, start=MIDNIGHT + 3_600)  # new events, some unpriced
    silver_webhooks.run(ctx, now=NOW)
    _describes_silver(ctx.lake)
    incremental = _rows(ctx.lake)
    silver_webhooks.run(ctx, now=NOW, full_refresh=True)
    assert _rows(ctx.lake) == incremental
    _describes_silver(ctx.lake)


def test_a_run_killed_before_the_table_is_rewritten_is_made_good_by_the_next(
    tmp_path: Any,
) -> None:
    ctx = _ctx(tmp_path)
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    _sol(ctx.lake, range(START + 5_400, START + 9_000, 60))

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt  # after silver's commit, before this table's

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webhook_unpriced, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            silver_webhooks.run(ctx, now=NOW)
    stale = webhook_unpriced.still_unpriced(ctx.lake.read(WEBHOOK_UNPRICED), SINCE)
    assert _keyed(stale) != _keyed(webhook_unpriced.still_unpriced(ctx.lake.read(WEBHOOK_SWAPS)))

    again = silver_webhooks.run(ctx, now=NOW).details
    assert again["unpriced_from"].startswith(f"{WEBHOOK_SWAPS.name} (")
    assert "gained data" in again["unpriced_from"]
    _describes_silver(ctx.lake)
    assert silver_webhooks.run(ctx, now=NOW).details["unpriced_from"] == WEBHOOK_UNPRICED.name
    incremental = _rows(ctx.lake)
    silver_webhooks.run(ctx, now=NOW, full_refresh=True)
    assert _rows(ctx.lake) == incremental


def test_a_compaction_of_silver_leaves_it_current_a_delete_does_not(tmp_path: Any) -> None:
    ctx = _ctx(tmp_path)
    _events(ctx.lake, 150)
    silver_webhooks.run(ctx, now=NOW)
    _events(ctx.lake, 150, seed=8, start=START + 6_000)
    silver_webhooks.run(ctx, now=NOW)
    assert compact_table(ctx.lake, WEBHOOK_SWAPS, 2**26, min_files=2).files_removed > 0
    assert silver_webhooks.run(ctx, now=NOW).details["unpriced_from"] == WEBHOOK_UNPRICED.name
    victim = ctx.lake.read(WEBHOOK_UNPRICED).column("signature")[0].as_py()
    ctx.lake.delete(WEBHOOK_SWAPS, f"signature = '{victim}'", META)
    rebuilt = silver_webhooks.run(ctx, now=NOW).details
    assert "gained data" in rebuilt["unpriced_from"]
    _describes_silver(ctx.lake)
    assert victim not in ctx.lake.read(WEBHOOK_UNPRICED).column("signature").to_pylist()


def test_a_run_repricing_from_further_back_reads_silver(tmp_path: Any) -> None:
    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW + timedelta(days=3))  # the events are past its lookback
    assert ctx.lake.read(WEBHOOK_UNPRICED).num_rows == 0
    back = silver_webhooks.run(ctx, now=NOW).details
    assert back["unpriced_from"].startswith(f"{WEBHOOK_SWAPS.name} (") and back["unpriced"] > 0
    _describes_silver(ctx.lake)


def test_events_of_tokens_no_price_source_knows_are_not_valued_again(tmp_path: Any) -> None:
    from smarttrader_cli.stream import valuation
    from smarttrader_cli.stream.valuation import NO_KNOWN_PRICE

    ctx = _ctx(tmp_path)
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))  # SOL for the first hour only
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    legs = ctx.lake.read(WEBHOOK_UNPRICED).to_pylist()
    unknown = {r["signature"] for r in legs if r["unpriced_reason"] == NO_KNOWN_PRICE}
    others = {r["signature"] for r in legs if r["unpriced_reason"] != NO_KNOWN_PRICE}
    assert unknown - others and others  # events of unknown tokens only, and others
    valued: list[int] = []
    real = valuation.value_legs

    def counting(*args: Any) -> Any:
        valued.append(1)
        return real(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(valuation, "value_legs", counting)
        quiet = silver_webhooks.run(ctx, now=NOW).details
    assert quiet["unpriced"] == len(unknown | others)
    assert len(valued) == len(others)  # events of unknown tokens only are not valued again
