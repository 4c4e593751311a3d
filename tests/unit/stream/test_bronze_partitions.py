"""bronze.webhook_events by the UTC day its events were received: an old table is rewritten
into the partitions once by the next drain (its id, offsets and rows kept, under the locks
of the drain and of compaction), silver's cursor reads on through it, and compaction folds
only the days that hold small files."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from smarttrader_cli.config import load_config
from smarttrader_cli.errors import LockHeldError
from smarttrader_cli.lake import layout
from smarttrader_cli.lake.commits import CommitMeta
from smarttrader_cli.lake.maintenance import compact_table, migrate_tables
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.ops.locks import stage_lock
from smarttrader_cli.stages import silver_webhooks, stream_drain
from smarttrader_cli.stages.contract import StageContext
from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.local_log import LocalConsumer
from tests.harness import write_config
from tests.stream_support import committed_offsets, event_signatures, helius_events, produce
from tests.unit.stages.test_silver_webhooks_layout import _rows

MIDNIGHT = 1_760_054_400  # 2025-10-10 00:00 UTC
HOUR_US = 3600 * 10**6
META = CommitMeta("migrate", "lake.migrate", "h")
MB = 2**20


def _ctx(config: Path) -> StageContext:
    loaded = load_config(config)
    return StageContext.of(loaded, Lake.from_config(loaded))


def _received(
    events: list[dict[str, Any]], first_hour: int, hours_apart: int = 1
) -> list[OutboundEvent]:
    """The events as the receiver stamped them: `hours_apart` from `first_hour` after
    MIDNIGHT on (one an hour: a batch of them spans days)."""
    return [
        OutboundEvent(
            e["signature"].encode(),
            orjson.dumps(e),
            (MIDNIGHT * 10**6) + (first_hour + i * hours_apart) * HOUR_US,
        )
        for i, e in enumerate(events)
    ]


def _old_table(config: Path) -> None:
    """An empty bronze.webhook_events created as the code before its partitions did."""
    old = pa.schema([f for f in WEBHOOK_EVENTS.schema if f.name != "received_date"])
    DeltaTable.create(_ctx(config).lake.uri(WEBHOOK_EVENTS), schema=old)


def _drain_old(ctx: StageContext) -> None:
    """A drain as the code before left the table: no migration."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layout, "repartition_from_writer", lambda *args: None)
        stream_drain.run(ctx)


def _unpartitioned(config: Path) -> None:
    """bronze.webhook_events as the code before its partitions left it (no received_date,
    no partitions), with the drain's offsets in its log."""
    uri = _ctx(config).lake.uri(WEBHOOK_EVENTS)
    rows = DeltaTable(uri).to_pyarrow_table().drop_columns(["received_date"])
    write_deltalake(
        uri, rows, mode="overwrite", schema_mode="overwrite", commit_properties=CommitProperties()
    )
    table = DeltaTable(uri)
    assert table.metadata().partition_columns == []
    assert "received_date" not in table.schema().to_arrow().names


def _days(lake: Lake) -> Counter[date | None]:
    return Counter(
        lake.read(WEBHOOK_EVENTS, columns=["received_date"])["received_date"].to_pylist()
    )


def _drained_the_old_way(config: Path, events: list[dict[str, Any]]) -> StageContext:
    """`events` received an hour apart and drained into a table made as before."""
    produce(config, _received(events, 0))
    _old_table(config)
    ctx = _ctx(config)
    _drain_old(ctx)
    return ctx


def test_the_next_drain_rewrites_an_old_table_into_days_keeping_offsets_and_cursors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    events = helius_events(120, seed=3)
    ctx = _drained_the_old_way(config, events[:60])
    now = datetime.fromtimestamp(MIDNIGHT, UTC) + timedelta(days=5)
    silver_webhooks.run(ctx, now=now)  # its cursor into bronze, before the rewrite
    _unpartitioned(config)
    before = DeltaTable(ctx.lake.uri(WEBHOOK_EVENTS))
    offsets = committed_offsets(config)

    produce(config, _received(events[60:], 60))  # days 2 to 4, drained after the rewrite
    with caplog.at_level(logging.WARNING, logger="st.lake.layout"):
        done = stream_drain.run(_ctx(config))

    assert done.details["events_written"] == 60
    table = DeltaTable(ctx.lake.uri(WEBHOOK_EVENTS))
    assert table.metadata().partition_columns == ["received_date"]
    assert table.metadata().id == before.metadata().id
    assert any("rewriting 60 rows" in r.getMessage() for r in caplog.records)
    # every event once, each in the day it was received; the offsets moved on from the kept ones
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)
    assert _days(ctx.lake) == Counter(
        (datetime.fromtimestamp(MIDNIGHT, UTC) + timedelta(hours=h)).date() for h in range(120)
    )
    ends = LocalConsumer(load_config(config).config.stream).log.end_offsets()
    assert committed_offsets(config) == {p: end - 1 for p, end in ends.items()}
    assert all(offsets[p] is not None for p in offsets)
    # silver's cursor reads on (the rewritten rows once more, merged on their key)
    silver_webhooks.run(_ctx(config), now=now)
    incremental = _rows(ctx.lake)
    silver_webhooks.run(_ctx(config), now=now, full_refresh=True)
    assert incremental == _rows(ctx.lake) and incremental


def test_a_drain_beside_a_compaction_drains_into_the_old_layout_until_the_next_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path)
    events = helius_events(40, seed=4)
    _drained_the_old_way(config, events[:20])
    _unpartitioned(config)
    produce(config, _received(events[20:], 20))
    state_dir = load_config(config).config.runtime.state_dir
    with stage_lock(state_dir, "ops.compact", "compacting"):
        with caplog.at_level(logging.WARNING, logger="st.lake.layout"):
            stream_drain.run(_ctx(config))
        assert any("keeps its old layout" in r.getMessage() for r in caplog.records)
        assert DeltaTable(_ctx(config).lake.uri(WEBHOOK_EVENTS)).metadata().partition_columns == []
    stream_drain.run(_ctx(config))  # nothing new to drain: it only rewrites the table
    lake = _ctx(config).lake
    assert DeltaTable(lake.uri(WEBHOOK_EVENTS)).metadata().partition_columns == ["received_date"]
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)
    assert None not in _days(lake)  # the rows drained into the old layout got their day too


def test_lake_migrate_refuses_while_a_drain_holds_its_lock(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    _drained_the_old_way(config, helius_events(10, seed=5))
    _unpartitioned(config)
    state_dir = load_config(config).config.runtime.state_dir
    lake = _ctx(config).lake
    with stage_lock(state_dir, "stream.drain", "draining"):
        with pytest.raises(LockHeldError, match=r"stream\.drain"):
            migrate_tables(lake, [WEBHOOK_EVENTS.name], state_dir, META)
    assert DeltaTable(lake.uri(WEBHOOK_EVENTS)).metadata().partition_columns == []
    [row] = migrate_tables(lake, [WEBHOOK_EVENTS.name], state_dir, META)
    assert row["rows_repartitioned"] == 10


def test_compaction_folds_only_the_days_with_small_files(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    events = helius_events(90, seed=6)
    for day in range(3):  # three drains a day, for three days
        for drain in range(3):
            chunk = events[day * 30 + drain * 10 : day * 30 + drain * 10 + 10]
            produce(config, _received(chunk, 24 * day + drain))
            stream_drain.run(_ctx(config))
        if day == 0:
            lake = _ctx(config).lake
            compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2)  # day 0 into one file
    lake = _ctx(config).lake
    kept = {p for p in DeltaTable(lake.uri(WEBHOOK_EVENTS)).file_uris() if "2025-10-10" in p}
    assert len(kept) == 1

    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2)

    assert (done.small_files, done.files_removed, done.files_added) == (6, 6, 2)
    files = DeltaTable(lake.uri(WEBHOOK_EVENTS)).file_uris()
    assert kept <= set(files) and len(files) == 3  # day 0's file was not rewritten
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)
    assert sorted(_days(lake).values()) == [30, 30, 30]


def _utc(micros: list[int | None]) -> pa.Array:
    return pa.array(micros, pa.int64()).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


def test_rows_get_the_utc_day_of_received_at_else_of_ingested_at(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    day = MIDNIGHT * 10**6
    rows = pa.table(
        {
            "signature": ["a", "b", "c"],
            "received_at": _utc([day - 1, day, None]),  # c: a message without a receive time
            "ingested_at": _utc([day + 86_400 * 10**6] * 3),
        }
    )
    lake.append(WEBHOOK_EVENTS, rows, META)
    lake.append(WEBHOOK_EVENTS, pa.table({"signature": ["d"]}), META)  # neither: null
    got = {r["signature"]: r["received_date"] for r in lake.read(WEBHOOK_EVENTS).to_pylist()}
    assert got == {
        "a": date(2025, 10, 9),
        "b": date(2025, 10, 10),
        "c": date(2025, 10, 11),
        "d": None,
    }


def _files(lake: Lake, day: str) -> set[str]:
    return {p for p in DeltaTable(lake.uri(WEBHOOK_EVENTS)).file_uris() if day in p}


def _sizes(lake: Lake) -> dict[str, int]:
    actions = pa.table(DeltaTable(lake.uri(WEBHOOK_EVENTS)).get_add_actions(flatten=True))
    return dict(zip(actions["path"].to_pylist(), actions["size_bytes"].to_pylist(), strict=True))


def test_the_newest_day_is_compacted_into_open_sized_files_which_are_not_read_again(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    events = iter(helius_events(200, seed=8))

    def drain(hour: int, count: int = 1, size: int = 2) -> None:
        for _ in range(count):
            produce(config, _received([next(events) for _ in range(size)], hour, 0))
            stream_drain.run(_ctx(config))

    lake = _ctx(config).lake
    drain(1, 3)  # day 0
    drain(25, 4, size=40)  # day 1, the newest
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2, open_size=16 * MB)
    assert (done.small_files, done.files_removed, done.files_added) == (7, 7, 2)
    [folded] = _files(lake, "2025-10-11")
    size = next(n for p, n in _sizes(lake).items() if "2025-10-11" in p)

    drain(26, 3)  # the newest day grows: its folded file is at the open size, not read again
    assert sum(n for p, n in _sizes(lake).items() if "2025-10-11" in p) < 2 * size
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2, open_size=size)
    assert (done.small_files, done.files_removed, done.files_added) == (3, 3, 1)
    assert folded in _files(lake, "2025-10-11") and len(_files(lake, "2025-10-11")) == 2
    day0 = _files(lake, "2025-10-10")

    drain(49)  # a new day: the one before is folded into a target-sized file, once
    done = compact_table(lake, WEBHOOK_EVENTS, 64 * MB, min_files=2, open_size=size)
    assert (done.small_files, done.files_removed, done.files_added) == (2, 2, 1)
    assert len(_files(lake, "2025-10-11")) == 1 and _files(lake, "2025-10-10") == day0
    assert compact_table(lake, WEBHOOK_EVENTS, 64 * MB, 2, open_size=size).files_removed == 0
    assert len(event_signatures(config)) == 6 + 160 + 6 + 2
    assert len(set(event_signatures(config))) == 6 + 160 + 6 + 2
