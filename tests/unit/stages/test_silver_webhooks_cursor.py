"""`st silver webhooks` reads what bronze gained since its cursor, not a window of time."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS, WEBHOOK_SWAPS
from smarttrader_cli.stages.prices import WSOL, PriceBook
from smarttrader_cli.stages.silver_webhooks import SwapsResult, Valuation, build_swaps
from tests.stream_support import append_bronze, helius_events

META = CommitMeta("run", "silver.webhooks", "h")
START = 1_760_000_000
DRAIN = 200


def _valuation(book: PriceBook | None = None) -> Valuation:
    return Valuation(book or PriceBook(900), {}, frozenset(), 10_000_000)


def _run(lake: Lake, **kwargs: Any) -> SwapsResult:
    return build_swaps(lake, META, _valuation(), **kwargs)


def _events(count: int, start: int) -> list[dict[str, Any]]:
    return helius_events(count, start_time=start)


def _drains(lake: Lake, drains: int, first: int = 0) -> int:
    """`drains` bronze commits of DRAIN events each; the events' start offset after them."""
    for i in range(first, first + drains):
        append_bronze(lake, _events(DRAIN, START + i * DRAIN * 2))
    return first + drains


def _assert_one_row_per_key(rows: list[dict[str, Any]]) -> None:
    assert len({(r["signature"], r["wallet"], r["leg"]) for r in rows}) == len(rows)


def _rows(lake: Lake) -> list[dict[str, Any]]:
    rows = lake.read(WEBHOOK_SWAPS).drop_columns(["processed_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: (r["signature"], r["wallet"], r["leg"]))


def test_a_run_reads_and_updates_only_the_events_added_since_the_last_one(
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = 0
    for _ in range(4):  # N cron cycles: a few drains, then the stage
        done = _drains(lake, 3, done)
        _run(lake)
    before = lake.read(WEBHOOK_SWAPS).num_rows
    done = _drains(lake, 2, done)  # 400 new events
    result = _run(lake)
    assert result.events == 2 * DRAIN  # the window of the old code re-read all 2,800
    assert result.updated == 0
    assert result.inserted == result.legs == lake.read(WEBHOOK_SWAPS).num_rows - before
    assert result.bronze_version == lake.version(WEBHOOK_EVENTS)
    nothing = _run(lake)
    assert (nothing.events, nothing.legs) == (0, 0)


def test_legs_of_events_new_to_silver_are_appended_and_others_merged(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 2)
    _run(lake)
    done = _drains(lake, 2, done)
    _run(lake)
    assert lake.history(WEBHOOK_SWAPS, 1)[0]["operation"] == "WRITE"  # an append, no scan
    done = _drains(lake, 2, done)
    lake.optimize(WEBHOOK_EVENTS)  # new events folded with ones read before...
    lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)  # ...read whole again
    again = _run(lake)
    assert again.events == done * DRAIN and again.updated > 0
    assert lake.history(WEBHOOK_SWAPS, 1)[0]["operation"] == "MERGE"
    incremental = _rows(lake)
    _assert_one_row_per_key(incremental)
    _run(lake, full_refresh=True)
    assert _rows(lake) == incremental


def test_a_late_event_with_an_old_block_time_is_still_read(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _drains(lake, 2)
    _run(lake)
    late = helius_events(5, seed=11, start_time=START - 86_400 * 30)  # a month old
    # ingested (stamped) long before its commit landed: older than any window allows
    append_bronze(lake, late, ingested_at=datetime.now(UTC) - timedelta(hours=3))
    result = _run(lake)
    assert result.events == 5
    signatures = set(lake.read(WEBHOOK_SWAPS, columns=["signature"]).column(0).to_pylist())
    assert {e["signature"] for e in late} <= signatures


@pytest.mark.parametrize("vacuum", [False, True])
def test_compaction_adds_nothing_new_to_read(tmp_path: Path, vacuum: bool) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 4)
    _run(lake)
    lake.optimize(WEBHOOK_EVENTS)  # after a run: everything compacted was read already
    done = _drains(lake, 2, done)
    assert _run(lake).events == 2 * DRAIN
    done = _drains(lake, 2, done)
    lake.optimize(WEBHOOK_EVENTS)  # before a run: unread events folded into a big file
    if vacuum:  # ... whose small originals are gone
        lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)
    result = _run(lake)
    if vacuum:  # the compacted file holds them, with some read before: read, not lost
        assert result.events == done * DRAIN
    else:
        assert result.events == 2 * DRAIN
    assert result.updated == result.legs - result.inserted
    incremental = _rows(lake)
    _run(lake, full_refresh=True)
    assert _rows(lake) == incremental


def test_incremental_runs_equal_a_full_refresh_row_for_row(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = 0
    for step in range(6):
        done = _drains(lake, 1 + step % 2, done)
        if step == 2:
            lake.optimize(WEBHOOK_EVENTS)
        if step == 3:  # late: an old block time, stamped hours before its commit landed
            late = helius_events(7, seed=3, start_time=START - 7_200)
            append_bronze(lake, late, ingested_at=datetime.now(UTC) - timedelta(hours=3))
        _run(lake)
    incremental = _rows(lake)
    assert len(incremental) > done * DRAIN  # two legs or more per swap
    _run(lake, full_refresh=True)
    assert _rows(lake) == incremental


def test_the_cursor_survives_many_commits_and_an_expired_log_of_silver(tmp_path: Path) -> None:
    from deltalake import DeltaTable

    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 2)
    _run(lake)
    for _ in range(60):  # commits of others that carry no cursor (optimize, vacuum, ...)
        lake.append(WEBHOOK_SWAPS, WEBHOOK_SWAPS.schema.empty_table(), CommitMeta("o", "t", "h"))
    _expire_log(lake, WEBHOOK_SWAPS)
    assert not any(c.get("stage") == "silver.webhooks" for c in lake.history(WEBHOOK_SWAPS))
    assert DeltaTable(lake.uri(WEBHOOK_SWAPS)).version() > 60
    _drains(lake, 1, done)
    assert _run(lake).events == DRAIN


def test_expired_bronze_commits_are_read_again_in_full_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 2)
    _run(lake)
    done = _drains(lake, 2, done)
    _expire_log(lake, WEBHOOK_EVENTS)  # log retention took the commits after the cursor
    with caplog.at_level(logging.WARNING, logger="st.silver.webhooks"):
        result = _run(lake)
    assert result.events == done * DRAIN
    assert "no longer in its log" in result.read
    assert "every event is read" in caplog.text and "log retention" in caplog.text
    incremental = _rows(lake)
    _run(lake, full_refresh=True)
    assert _rows(lake) == incremental


def test_a_recreated_or_restored_bronze_table_is_read_in_full_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    bronze = Path(lake.uri(WEBHOOK_EVENTS))
    done = _drains(lake, 2)
    shutil.copytree(bronze, tmp_path / "backup")  # the same table, two versions ago
    _drains(lake, 3, done)
    _run(lake)
    shutil.rmtree(bronze)
    shutil.copytree(tmp_path / "backup", bronze)  # restored from the backup
    with caplog.at_level(logging.WARNING, logger="st.silver.webhooks"):
        restored = _run(lake)
    assert restored.events == 2 * DRAIN and "behind the cursor" in caplog.text
    shutil.rmtree(bronze)  # dropped and written again: another table
    append_bronze(lake, _events(50, START + 10**6))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="st.silver.webhooks"):
        recreated = _run(lake)
    assert recreated.events == 50 and "no cursor" in caplog.text
    assert _run(lake).events == 0  # the new table's cursor is followed from here


def test_unpriced_legs_are_repriced_when_their_price_arrives(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    events = _events(DRAIN, START)
    append_bronze(lake, events)
    first = _run(lake)
    unpriced = [r for r in lake.read(WEBHOOK_SWAPS).to_pylist() if r["unpriced_reason"]]
    assert unpriced and first.repriced == 0
    sol = PriceBook(900, series={WSOL: ([START - 60, START + DRAIN * 2 + 60], [150.0, 151.0])})
    since = datetime.fromtimestamp(START - 3_600, UTC)
    again = build_swaps(lake, META, _valuation(sol), reprice_since=since)
    assert again.events == 0
    assert again.unpriced == len({r["signature"] for r in unpriced})
    # SOL values the swaps against SOL; token-to-token swaps stay as they were, unparsed
    assert 0 < again.repriced < again.unpriced
    assert again.updated > 0
    still = [r for r in lake.read(WEBHOOK_SWAPS).to_pylist() if r["unpriced_reason"]]
    assert len(still) < len(unpriced)
    assert build_swaps(lake, META, _valuation(sol), reprice_since=since).repriced == 0
    later = datetime.fromtimestamp(START + DRAIN * 2 + 1, UTC)  # legs older than the bound
    assert build_swaps(lake, META, _valuation(sol), reprice_since=later).unpriced == 0


def _expire_log(lake: Lake, spec: Any) -> None:
    """What log retention does: a checkpoint, then the commit files before it deleted."""
    from deltalake import DeltaTable

    table = DeltaTable(lake.uri(spec))
    table.create_checkpoint()
    log_dir = Path(lake.uri(spec)) / "_delta_log"
    for commit in log_dir.glob("*.json"):
        if int(commit.name.split(".")[0]) < table.version():
            commit.unlink()


def test_the_stage_reprices_the_lookback_before_the_now_it_is_given(tmp_path: Path) -> None:
    from smarttrader_cli.config import load_config
    from smarttrader_cli.stages import silver_webhooks
    from smarttrader_cli.stages.contract import StageContext
    from tests.harness import write_config

    loaded = load_config(write_config(tmp_path))
    ctx = StageContext.of(loaded, Lake.from_config(loaded))
    append_bronze(ctx.lake, _events(DRAIN, START))
    silver_webhooks.run(ctx)
    unpriced = {
        r["signature"] for r in ctx.lake.read(WEBHOOK_SWAPS).to_pylist() if r["unpriced_reason"]
    }
    assert unpriced
    assert silver_webhooks.run(ctx).details["repriced"] == 0  # the events are years old
    an_hour_later = datetime.fromtimestamp(START + 3_600, UTC)
    again = silver_webhooks.run(ctx, now=an_hour_later)
    assert again.details["unpriced"] == len(unpriced)
    assert again.details["repriced"] == 0  # no price came since: nothing parsed again


def test_events_read_from_their_own_files_are_appended_without_a_look_at_silver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smarttrader_cli.stages import silver_webhooks

    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 2)
    _run(lake)
    looked: list[int] = []
    unseen = silver_webhooks._unseen
    monkeypatch.setattr(
        silver_webhooks, "_unseen", lambda silver, legs: looked.append(1) or unseen(silver, legs)
    )
    done = _drains(lake, 2, done)
    lake.optimize(WEBHOOK_EVENTS)  # folded, originals still on disk: read as they were
    _run(lake)
    assert looked == [] and lake.history(WEBHOOK_SWAPS, 1)[0]["operation"] == "WRITE"
    done = _drains(lake, 1, done)
    lake.optimize(WEBHOOK_EVENTS)
    lake.vacuum(WEBHOOK_EVENTS, retention_hours=0, dry_run=False)  # read whole: look first
    _run(lake)
    assert looked == [1] and lake.history(WEBHOOK_SWAPS, 1)[0]["operation"] == "MERGE"
    incremental = _rows(lake)
    _assert_one_row_per_key(incremental)


def test_a_run_stopped_after_merging_a_chunk_leaves_the_next_one_merging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smarttrader_cli.stages import silver_webhooks

    lake = Lake(str(tmp_path / "lake"))
    done = _drains(lake, 1)
    _run(lake)
    done = _drains(lake, 3, done)
    monkeypatch.setattr(silver_webhooks, "CHUNK_EVENTS", DRAIN)
    merged = silver_webhooks._merge
    calls: list[int] = []

    def stop_after_the_first_chunk(*args: Any, **kwargs: Any) -> Any:
        if calls:
            raise RuntimeError("killed")
        calls.append(1)
        return merged(*args, **kwargs)

    monkeypatch.setattr(silver_webhooks, "_merge", stop_after_the_first_chunk)
    with pytest.raises(RuntimeError):
        _run(lake)
    monkeypatch.setattr(silver_webhooks, "_merge", merged)
    monkeypatch.setattr(silver_webhooks, "CHUNK_EVENTS", 50_000)
    again = _run(lake)  # the chunk's legs are in silver, past the cursor: merged, not added
    assert again.events == 3 * DRAIN and again.updated > 0
    incremental = _rows(lake)
    _assert_one_row_per_key(incremental)
    _run(lake, full_refresh=True)
    assert _rows(lake) == incremental
