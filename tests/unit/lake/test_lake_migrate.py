"""Lakes written by an older st: new columns are added and backfilled, and old keys keep working."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from smarttrader_cli.lake import CommitMeta, Lake, table_spec
from smarttrader_cli.lake.maintenance import migrate_tables

TRADES = table_spec("bronze.wallet_trades")
REJECTS = table_spec("bronze.api_rejects")
META = CommitMeta("run-2", "test.stage", "cfg")


def _old_trades_table(lake: Lake) -> None:
    """bronze.wallet_trades as the release before fill_id wrote it: two rows."""
    old_schema = pa.schema([f for f in TRADES.schema if f.name != "fill_id"])
    rows = {f.name: pa.nulls(2, f.type) for f in old_schema}
    rows.update(
        tx_hash=pa.array(["tx1", "tx2"]),
        ins_index=pa.array([0, 1], pa.int32()),
        inner_ins_index=pa.array([0, 0], pa.int32()),
        wallet_address=pa.array(["W", "W"]),
        block_unix_time=pa.array([10, 20], pa.int64()),
        from_amount=pa.array([1.0, 2.0]),
    )
    DeltaTable.create(lake.uri(TRADES), schema=old_schema)
    write_deltalake(lake.uri(TRADES), pa.table(rows, schema=old_schema), mode="append")


def _new_rows(fills: list[tuple[str, str]]) -> pa.Table:
    return pa.table(
        {
            "tx_hash": [tx for tx, _ in fills],
            "ins_index": pa.array([0 if not f else -1 for _, f in fills], pa.int32()),
            "inner_ins_index": pa.array([0 if not f else -1 for _, f in fills], pa.int32()),
            "fill_id": [f for _, f in fills],
            "wallet_address": ["W"] * len(fills),
            "block_unix_time": pa.array([10] * len(fills), pa.int64()),
            "from_amount": [5.0] * len(fills),
        }
    )


def test_the_first_write_to_an_old_table_adds_and_backfills_fill_id(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _old_trades_table(lake)
    # tx1 again (same swap, old key) and two openbook fills of a new tx
    merged = lake.merge(TRADES, _new_rows([("tx1", ""), ("tx3", "f1"), ("tx3", "f2")]), META)
    assert (merged.inserted, merged.updated) == (2, 1)  # tx1 matched its old row: no duplicate
    rows = sorted(lake.read(TRADES).to_pylist(), key=lambda r: (r["tx_hash"], r["fill_id"]))
    assert [(r["tx_hash"], r["fill_id"]) for r in rows] == [
        ("tx1", ""), ("tx2", ""), ("tx3", "f1"), ("tx3", "f2")
    ]  # fmt: skip
    assert rows[0]["from_amount"] == 5.0 and rows[1]["from_amount"] == 2.0


def test_migrate_command_is_idempotent(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _old_trades_table(lake)
    state = str(tmp_path / "state")
    [first] = migrate_tables(lake, ["bronze.wallet_trades"], state, META)
    assert first == {
        "table": TRADES.name, "columns_added": "fill_id", "rows_backfilled": 2,
        "rows_repartitioned": 0,
    }  # fmt: skip
    [again] = migrate_tables(Lake(lake.root), ["bronze.wallet_trades"], state, META)
    assert again == {
        "table": TRADES.name,
        "columns_added": "",
        "rows_backfilled": 0,
        "rows_repartitioned": 0,
    }
    assert {r["fill_id"] for r in lake.read(TRADES).to_pylist()} == {""}


def test_a_reject_fetched_again_is_kept_once(tmp_path: Path) -> None:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Reject
    from smarttrader_cli.stages.bronze_common import write_rejects

    lake = Lake(str(tmp_path / "lake"))
    run = StageRun("run-1", "bronze.trades", "cfg")
    bad = Reject("/trader/txs/seek_by_time", "offset=0", "tx_hash: missing", '{"tx_hash": null}')
    assert write_rejects(lake, [bad, bad], run) == 1
    again = Reject(bad.endpoint, "offset=100", bad.reason, bad.raw)  # another page, same item
    assert write_rejects(lake, [again], run) == 0
    other = Reject(bad.endpoint, "offset=0", "quote: missing", '{"quote": null}')
    assert write_rejects(lake, [other], run) == 1
    assert lake.read(REJECTS).num_rows == 2


def test_silver_webhooks_runs_on_a_swaps_table_written_before_its_new_columns(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from smarttrader_cli.stages.prices import PriceBook
    from smarttrader_cli.stages.silver_webhooks import Valuation, build_swaps

    lake = Lake(str(tmp_path / "lake"))
    swaps = table_spec("silver.webhook_swaps")
    new = {"amount_raw", "decimals", "price_source", "unpriced_reason"}
    old_schema = pa.schema([f for f in swaps.schema if f.name not in new])
    DeltaTable.create(lake.uri(swaps), schema=old_schema)
    old_row = {f.name: pa.nulls(1, f.type) for f in old_schema}
    old_row.update(
        signature=pa.array(["s0"]), wallet=pa.array(["W"]), leg=pa.array([0], pa.int32())
    )
    write_deltalake(lake.uri(swaps), pa.table(old_row, schema=old_schema), mode="append")
    events = table_spec("bronze.webhook_events")
    lake.append(
        events,
        pa.table(
            {
                "signature": ["s1"],
                "payload": ['{"signature": "s1"}'],
                "ingested_at": [datetime.now(UTC)],
            }
        ),
        META,
    )
    valuation = Valuation(PriceBook(900), {}, frozenset(), 10_000_000)
    result = build_swaps(lake, META, valuation, reprice_since=datetime(2020, 1, 1, tzinfo=UTC))
    assert result.events == 1
    assert new <= set(lake.table(swaps).schema().to_arrow().names)
