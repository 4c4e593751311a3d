"""silver.webhook_swaps by day: merges touch only their days, an old table is rewritten into
the partitions once (its cursor kept), compaction folds only the days with small files, and
a run parses again only the unpriced events a new price (or the smart list) changes."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from smarttrader_cli.config import load_config
from smarttrader_cli.errors import LakeError, LockHeldError
from smarttrader_cli.lake import layout
from smarttrader_cli.lake.commits import CommitMeta
from smarttrader_cli.lake.maintenance import compact_table, migrate_tables
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import TOKEN_METRICS, TOKEN_PRICES, WEBHOOK_SWAPS
from smarttrader_cli.ops.locks import stage_lock
from smarttrader_cli.stages import silver_webhooks
from smarttrader_cli.stages.contract import StageContext
from smarttrader_cli.stages.prices import WSOL
from tests.harness import write_config
from tests.stream_support import append_bronze, helius_events

META = CommitMeta("run", "silver.webhooks", "h")
MIDNIGHT = 1_760_054_400  # 2025-10-10 00:00 UTC
START = MIDNIGHT - 3 * 3600  # the events run from 21:00 across midnight
NOW = datetime.fromtimestamp(MIDNIGHT + 6 * 3600, UTC)  # inside prices.lookback_hours


def _ctx(tmp_path: Path) -> StageContext:
    loaded = load_config(write_config(tmp_path))
    return StageContext.of(loaded, Lake.from_config(loaded))


def _rows(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.read(WEBHOOK_SWAPS).drop_columns(["processed_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: (r["signature"], r["wallet"], r["leg"]))


def _events(lake: Lake, count: int = 300, seed: int = 7, start: int = START) -> list[Any]:
    events = helius_events(count, seed=seed, start_time=start)
    for i, event in enumerate(events):  # 40 s apart: 300 events span 3 h 20 min
        event["timestamp"] = start + 40 * i
    append_bronze(lake, events)
    return events


def _sol(lake: Lake, times: range) -> None:
    rows = pa.table(
        {
            "token_address": [WSOL] * len(times),
            "unix_time": list(times),
            "price_usd": [150.0 + (t % 600) / 100 for t in times],
        }
    )
    lake.append(TOKEN_PRICES, rows, CommitMeta("p", "bronze.prices", "h"))


def _last_commit(lake: Lake) -> list[dict[str, Any]]:
    log = sorted((Path(lake.uri(WEBHOOK_SWAPS)) / "_delta_log").glob("*.json"))[-1]
    return [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]


def test_event_date_is_the_utc_day_of_the_event_and_the_table_is_partitioned_by_it(
    tmp_path: Path,
) -> None:
    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    assert DeltaTable(ctx.lake.uri(WEBHOOK_SWAPS)).metadata().partition_columns == ["event_date"]
    rows = ctx.lake.read(WEBHOOK_SWAPS).to_pylist()
    assert {r["event_date"] for r in rows} == {date(2025, 10, 9), date(2025, 10, 10)}
    assert all(r["event_date"] == r["event_time"].astimezone(UTC).date() for r in rows)


def test_a_merge_rewrites_only_the_files_of_its_rows_days(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _events(ctx.lake, 300, start=START - 3 * 86_400)  # three days before: other partitions
    silver_webhooks.run(ctx, now=NOW)
    _events(ctx.lake, 300, seed=8)
    silver_webhooks.run(ctx, now=NOW)
    _sol(ctx.lake, range(MIDNIGHT + 1_200, MIDNIGHT + 4 * 3600, 60))  # values only the new day
    repriced = silver_webhooks.run(ctx, now=NOW)
    assert repriced.details["repriced"] > 0
    actions = _last_commit(ctx.lake)
    removed = [a["remove"] for a in actions if "remove" in a]
    assert removed and {r["partitionValues"]["event_date"] for r in removed} == {"2025-10-10"}
    merge = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    metrics = merge["operationMetrics"]
    assert metrics["num_target_files_skipped_during_scan"] > 0


def test_a_narrowed_reprice_equals_a_full_recompute_with_late_prices_and_snapshots(
    tmp_path: Path,
) -> None:
    ctx = _ctx(tmp_path)
    lake = ctx.lake
    _sol(lake, range(START - 60, START + 3_600, 60))  # SOL for the first hour only
    _events(lake)
    first = silver_webhooks.run(ctx, now=NOW).details
    assert first["unpriced"] == 0 and first["repriced"] == 0  # new events are parsed anyway
    quiet = silver_webhooks.run(ctx, now=NOW).details
    assert quiet["unpriced"] > 0 and quiet["repriced"] == 0  # nothing came: nothing parsed
    # Late points, then a snapshot of a token no table prices. The points begin more than
    # twice prices.max_staleness_seconds after the first ones: a priced leg is not valued
    # again (as before), so a point it would now be valued with would differ from a full
    # recompute, whatever the narrowing.
    _sol(lake, range(START + 5_400, START + 9_000, 60))
    late = silver_webhooks.run(ctx, now=NOW).details
    assert 0 < late["repriced"] < quiet["unpriced"]
    unknown = [r for r in _rows(lake) if (r["unpriced_reason"] or "").startswith("no known")]
    token = unknown[0]["token_address"]  # of a token-to-token swap
    snapshot = {"token_address": [token], "snapshot_at": [datetime.now(UTC)], "price": [0.25]}
    lake.append(TOKEN_METRICS, pa.table(snapshot), CommitMeta("t", "bronze.tokens", "h"))
    snapped = silver_webhooks.run(ctx, now=NOW).details
    assert 0 < snapped["repriced"] < late["unpriced"]
    incremental = _rows(lake)
    assert any(r["price_source"] == "token_snapshot" for r in incremental)
    silver_webhooks.run(ctx, now=NOW, full_refresh=True)
    assert _rows(lake) == incremental


def test_a_changed_smart_wallet_list_is_written_to_the_unpriced_events(tmp_path: Path) -> None:
    from smarttrader_cli.lake.tables import SMART_WALLETS

    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    wallet = next(r["wallet"] for r in _rows(ctx.lake) if r["unpriced_reason"])
    ctx.lake.append(SMART_WALLETS, pa.table({"wallet_address": [wallet]}), META)
    again = silver_webhooks.run(ctx, now=NOW).details
    assert again["repriced"] > 0
    incremental = _rows(ctx.lake)
    silver_webhooks.run(ctx, now=NOW, full_refresh=True)
    full = _rows(ctx.lake)
    unpriced = {r["signature"] for r in full if r["unpriced_reason"]}
    assert [r for r in incremental if r["signature"] in unpriced] == [
        r for r in full if r["signature"] in unpriced
    ]


def _unpartitioned(tmp_path: Path) -> StageContext:
    """A lake of 300 events whose silver.webhook_swaps is as the code before its partitions
    left it: no event_date, no partitions, and the cursor into bronze in its log."""
    from deltalake import CommitProperties

    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    with pytest.MonkeyPatch.context() as patch:  # the stage of before: no migration
        patch.setattr(layout, "repartition_from_writer", lambda *args: None)
        old = pa.schema([f for f in WEBHOOK_SWAPS.schema if f.name != "event_date"])
        DeltaTable.create(ctx.lake.uri(WEBHOOK_SWAPS), schema=old)
        silver_webhooks.run(ctx, now=NOW)
    uri = ctx.lake.uri(WEBHOOK_SWAPS)
    rows = DeltaTable(uri).to_pyarrow_table().drop_columns(["event_date"])
    write_deltalake(
        uri, rows, mode="overwrite", schema_mode="overwrite", commit_properties=CommitProperties()
    )
    table = DeltaTable(uri)
    assert table.metadata().partition_columns == []
    assert "event_date" not in table.schema().to_arrow().names
    return ctx


def test_an_old_table_is_rewritten_into_partitions_once_and_keeps_its_cursor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = _unpartitioned(tmp_path)
    before = _rows(ctx.lake)
    _events(ctx.lake, 50, seed=9, start=START + 20_000)
    with caplog.at_level(logging.INFO, logger="st.lake.layout"):
        result = silver_webhooks.run(ctx, now=NOW).details
    assert "rewriting" in caplog.text and "(once)" in caplog.text
    assert result["events"] == 50  # the cursor survived the rewrite: only the new events
    table = DeltaTable(ctx.lake.uri(WEBHOOK_SWAPS))
    assert table.metadata().partition_columns == ["event_date"]
    rows = _rows(ctx.lake)
    assert all(r["event_date"] == r["event_time"].date() for r in rows)
    old = {(r["signature"], r["wallet"], r["leg"]) for r in before}
    kept = [{k: v for k, v in r.items() if k != "event_date"} for r in rows]
    assert [r for r in kept if (r["signature"], r["wallet"], r["leg"]) in old] == before
    rewrites = [
        c for c in ctx.lake.history(WEBHOOK_SWAPS) if c.get("st_operation") == "repartition"
    ]
    assert len(rewrites) == 1
    silver_webhooks.run(ctx, now=NOW)
    again = [c for c in ctx.lake.history(WEBHOOK_SWAPS) if c.get("st_operation") == "repartition"]
    assert len(again) == 1  # once


def test_a_crash_mid_rewrite_leaves_the_old_table_readable(tmp_path: Path) -> None:
    from smarttrader_cli.lake import layout

    ctx = _unpartitioned(tmp_path)
    before = _rows(ctx.lake)

    def crash(table: Any, data: pa.RecordBatchReader, **kwargs: Any) -> None:
        write_deltalake(tmp_path / "elsewhere", data.read_next_batch())  # some files written
        raise OSError("killed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("deltalake.write_deltalake", crash)
        with pytest.raises(LakeError, match=r"repartition of silver\.webhook_swaps failed"):
            layout.repartition(ctx.lake, WEBHOOK_SWAPS, META, tmp_path / "state", ())
    assert DeltaTable(ctx.lake.uri(WEBHOOK_SWAPS)).metadata().partition_columns == []
    assert _rows(ctx.lake) == before
    rows = migrate_tables(ctx.lake, [WEBHOOK_SWAPS.name], tmp_path / "state", META)
    assert rows[0]["rows_repartitioned"] == len(before)
    assert _rows(ctx.lake) == [{**r, "event_date": r["event_time"].date()} for r in before]
    assert silver_webhooks.run(ctx, now=NOW).details["events"] == 0  # the cursor is kept


def test_the_rewrite_waits_while_a_writer_or_compaction_holds_its_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = _unpartitioned(tmp_path)
    state = ctx.config.runtime.state_dir
    with stage_lock(state, "ops.compact", "compacting"):
        with caplog.at_level(logging.WARNING, logger="st.silver.webhooks"):
            silver_webhooks.run(ctx, now=NOW)  # runs on the old layout
        assert "keeps its old layout" in caplog.text
        with pytest.raises(LockHeldError):
            migrate_tables(ctx.lake, [WEBHOOK_SWAPS.name], state, META)
    with stage_lock(state, "silver.webhooks", "webhooks"), pytest.raises(LockHeldError):
        migrate_tables(ctx.lake, [WEBHOOK_SWAPS.name], state, META)
    assert DeltaTable(ctx.lake.uri(WEBHOOK_SWAPS)).metadata().partition_columns == []
    [row] = migrate_tables(ctx.lake, [WEBHOOK_SWAPS.name], state, META)
    assert row["rows_repartitioned"] > 0
    [again] = migrate_tables(ctx.lake, [WEBHOOK_SWAPS.name], state, META)
    assert again["rows_repartitioned"] == 0


def test_compaction_folds_only_the_days_with_small_files(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    day = datetime(2025, 10, 1, tzinfo=UTC)

    def legs(n: int, at: datetime) -> pa.Table:
        return pa.table(
            {
                "signature": [f"s{at:%j}-{n}"],
                "wallet": ["W"],
                "leg": pa.array([0], pa.int32()),
                "event_time": [at],
            }
        )

    for offset in range(5):  # five old days, one file each
        lake.merge(WEBHOOK_SWAPS, legs(0, day + timedelta(days=offset)), META)
    for n in range(10):  # today: ten files
        lake.merge(WEBHOOK_SWAPS, legs(n, day + timedelta(days=9, minutes=n)), META)
    before = {Path(p).parent.name for p in DeltaTable(lake.uri(WEBHOOK_SWAPS)).file_uris()}
    old = [p for p in DeltaTable(lake.uri(WEBHOOK_SWAPS)).file_uris() if "10-10" not in p]
    done = compact_table(lake, WEBHOOK_SWAPS, 64 * 2**20, 8, META)
    assert (done.small_files, done.files_removed, done.files_added) == (10, 10, 1)
    after = DeltaTable(lake.uri(WEBHOOK_SWAPS)).file_uris()
    assert {Path(p).parent.name for p in after} == before
    assert sorted(p for p in after if "10-10" not in p) == sorted(old)  # not rewritten
    assert lake.read(WEBHOOK_SWAPS).num_rows == 15
    again = compact_table(lake, WEBHOOK_SWAPS, 64 * 2**20, 8, META)
    assert (again.small_files, again.checkpoint) == (0, None)  # one file a day: done


def test_a_merge_of_rows_without_a_day_keeps_them_once(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    rows = pa.table(
        {"signature": ["a", "b"], "wallet": ["W", "W"], "leg": pa.array([0, 0], pa.int32())}
    )
    rows = rows.append_column(
        "event_time", pa.array([None, datetime(2025, 1, 1, tzinfo=UTC)], pa.timestamp("us", "UTC"))
    )
    lake.merge(WEBHOOK_SWAPS, rows, META)
    again = lake.merge(WEBHOOK_SWAPS, rows, META)
    assert (again.inserted, again.updated) == (0, 2)
    assert lake.read(WEBHOOK_SWAPS).num_rows == 2


def test_a_reader_of_the_partitioned_table_follows_its_cursor(tmp_path: Path) -> None:
    """As `st alerts run` reads silver.webhook_swaps: the files added since a version, with
    their partition values, which live in the log."""
    from smarttrader_cli.lake.changes import added_since

    ctx = _ctx(tmp_path)
    _events(ctx.lake)
    silver_webhooks.run(ctx, now=NOW)
    after = ctx.lake.version(WEBHOOK_SWAPS) or 0
    new = {e["signature"] for e in _events(ctx.lake, 50, seed=9, start=MIDNIGHT - 600)}
    silver_webhooks.run(ctx, now=NOW)
    snapshot = ctx.lake.table(WEBHOOK_SWAPS)
    changes = added_since(ctx.lake, WEBHOOK_SWAPS, snapshot, after)
    schema = pa.schema(snapshot.schema().to_arrow())
    legs = changes.dataset(ctx.lake, WEBHOOK_SWAPS, schema).to_table().to_pylist()
    assert {r["signature"] for r in legs} == new & {r["signature"] for r in _rows(ctx.lake)}
    assert {r["event_date"] for r in legs} == {date(2025, 10, 9), date(2025, 10, 10)}
    assert all(r["event_date"] == r["event_time"].date() for r in legs)
