"""silver.webhook_unpriced: a run values again the unpriced legs from it, not from every leg
of the lookback; it is used only while it describes silver, and otherwise rebuilt from
silver, so an incremental run still equals a full refresh row for row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.lake.commits import CommitMeta
from smarttrader_cli.lake.maintenance import compact_table
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import (
    SMART_WALLETS,
    TOKEN_METRICS,
    TOKEN_PRICES,
    WEBHOOK_SWAPS,
    WEBHOOK_UNPRICED,
)
from smarttrader_cli.stages import silver_webhooks, unpriced_reach, webhook_unpriced
from smarttrader_cli.stages.prices import NATIVE_SOL, WSOL
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
        assert valued == [] and quiet["revalued"] == 0  # no change reaches any of them
        # When every stored event is valued again (a snapshot came, no cursor yet, ...):
        patch.setattr(unpriced_reach, "reached", lambda lake, c, rows, *a: (rows, "all"))
        every = silver_webhooks.run(ctx, now=NOW).details
    assert every["unpriced"] == len(unknown | others)
    assert len(valued) == len(others)  # events of unknown tokens only are not valued again


def _equals_a_full_refresh(ctx: Any) -> None:
    incremental = _rows(ctx.lake)
    silver_webhooks.run(ctx, now=NOW, full_refresh=True)
    assert _rows(ctx.lake) == incremental
    _describes_silver(ctx.lake)


def _priced_at(lake: Lake) -> dict[str, int]:
    """Unpriced events of the table, by signature, with their block time (unix s)."""
    return {
        r["signature"]: int(r["event_time"].timestamp())
        for r in lake.read(WEBHOOK_UNPRICED).to_pylist()
    }


def _of_sol(lake: Lake) -> dict[str, int]:
    """Of those, the events with a SOL leg: a SOL price point can reach them."""
    return {
        r["signature"]: int(r["event_time"].timestamp())
        for r in lake.read(WEBHOOK_UNPRICED).to_pylist()
        if r["token_address"] in (WSOL, NATIVE_SOL)
    }


def _late(lake: Lake, staleness: int) -> tuple[str, int]:
    """The oldest unpriced SOL event no point of the first hour could price, nor a priced
    event near it (a priced leg is not valued again, so a point that would now price it
    otherwise makes a full refresh differ, whatever is valued again)."""
    sol = _of_sol(lake)
    return min(((s, t) for s, t in sol.items() if t > START + 3_540 + 2 * staleness), key=_at)


def _at(item: tuple[str, int]) -> int:
    return item[1]


def test_only_the_events_near_new_price_points_are_valued_again_and_a_late_one_prices(
    tmp_path: Any,
) -> None:
    ctx = _ctx(tmp_path)
    staleness = ctx.config.prices.max_staleness_seconds
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))  # SOL for the first hour only
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    stored, sol = _priced_at(ctx.lake), _of_sol(ctx.lake)
    # A point far from every stored event (after the last one by more than the staleness)
    # reaches none of them.
    last = max(stored.values())
    _sol(ctx.lake, range(last + 2 * staleness, last + 2 * staleness + 1))
    far = silver_webhooks.run(ctx, now=NOW).details
    assert far["revalued"] == 0 and far["repriced"] == 0 and "1 price points" in far["reach"]
    # A late point at the time of an old unpriced SOL event reaches the SOL events near
    # it alone and prices the event.
    victim, at = _late(ctx.lake, staleness)
    _sol(ctx.lake, range(at, at + 1))
    late = silver_webhooks.run(ctx, now=NOW).details
    near = {s for s, t in sol.items() if abs(t - at) <= staleness + 1}
    assert 0 < late["revalued"] <= len(near) < len(stored) and late["repriced"] > 0
    assert victim not in _priced_at(ctx.lake)
    assert any(r["signature"] == victim and r["price_source"] for r in _rows(ctx.lake))
    _equals_a_full_refresh(ctx)


def test_a_new_smart_wallet_flips_its_old_unpriced_legs_alone(tmp_path: Any) -> None:
    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    legs = ctx.lake.read(WEBHOOK_UNPRICED).to_pylist()
    wallet = legs[0]["wallet"]
    theirs = {r["signature"] for r in legs if r["wallet"] == wallet}
    ctx.lake.append(SMART_WALLETS, pa.table({"wallet_address": [wallet]}), META)
    flipped = silver_webhooks.run(ctx, now=NOW).details
    assert flipped["revalued"] == len(theirs) < flipped["unpriced"]
    assert flipped["repriced"] == len(theirs)
    assert all(r["is_smart_wallet"] for r in _rows(ctx.lake) if r["wallet"] == wallet)
    assert silver_webhooks.run(ctx, now=NOW).details["revalued"] == 0
    _equals_a_full_refresh(ctx)


def test_a_snapshot_or_a_delete_of_price_points_values_every_stored_event_again(
    tmp_path: Any,
) -> None:
    ctx = _ctx(tmp_path)
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    token = ctx.lake.read(WEBHOOK_UNPRICED).column("token_address")[0].as_py()
    snapshot = {"token_address": [token], "snapshot_at": [datetime.now(UTC)], "price": [0.25]}
    ctx.lake.append(TOKEN_METRICS, pa.table(snapshot), CommitMeta("t", "bronze.tokens", "h"))
    snapped = silver_webhooks.run(ctx, now=NOW).details
    assert snapped["reach"].startswith("all (the snapshot") and snapped["repriced"] > 0
    assert snapped["revalued"] == snapped["unpriced"]
    # A point near no event, then its delete (a priced leg is not valued again: the
    # points it was valued with stay).
    far = max(_priced_at(ctx.lake).values()) + 2 * ctx.config.prices.max_staleness_seconds
    _sol(ctx.lake, range(far, far + 1))
    assert silver_webhooks.run(ctx, now=NOW).details["revalued"] == 0
    ctx.lake.delete(TOKEN_PRICES, f"unix_time = {far}", META)
    deleted = silver_webhooks.run(ctx, now=NOW).details
    assert "removed data (DELETE)" in deleted["reach"]
    assert deleted["revalued"] == deleted["unpriced"]
    after = silver_webhooks.run(ctx, now=NOW).details
    assert after["revalued"] == 0, after["reach"]
    _equals_a_full_refresh(ctx)


def test_a_merge_of_price_points_is_followed_by_its_added_rows(tmp_path: Any) -> None:
    ctx = _ctx(tmp_path)
    _sol(ctx.lake, range(START - 60, START + 3_600, 60))
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    stored = _priced_at(ctx.lake)
    at = _late(ctx.lake, ctx.config.prices.max_staleness_seconds)[1]
    # One point updated (to its own price: priced legs are not valued again), one added.
    points = pa.table({"token_address": [WSOL, WSOL], "unix_time": [START, at]})
    points = points.append_column("price_usd", pa.array([150.0 + (START % 600) / 100, 152.0]))
    ctx.lake.merge(TOKEN_PRICES, points, META)
    assert "MERGE" in str(ctx.lake.table(TOKEN_PRICES).history(1))
    merged = silver_webhooks.run(ctx, now=NOW).details
    assert not merged["reach"].startswith("all") and 0 < merged["revalued"] < len(stored)
    _equals_a_full_refresh(ctx)
