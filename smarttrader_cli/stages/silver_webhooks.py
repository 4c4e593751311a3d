"""`st silver webhooks`: bronze.webhook_events → silver.webhook_swaps, one row per swap leg.

Incremental by Delta version: each run commits, with its legs, a cursor (the bronze
version it read through, lake/changes.py) and the next run parses only the events the
bronze commits after it added, however late their block time. Compaction of bronze
adds nothing new, so it is not read again. When the cursor cannot be followed (no
cursor yet, bronze recreated, its commits expired from the log) every event is read,
and the log says why. Re-processing is harmless: rows are merged on their key
(signature, wallet, leg); the legs of events silver holds nothing of yet, the usual
case, are appended instead (no scan of their days' files). The events of
`prices.lookback_hours` whose legs are still unpriced are kept in
silver.webhook_unpriced (webhook_unpriced.py); those a change since reaches (a price
point near their time, a late one, a snapshot, a smart flag: unpriced_reach.py) are
valued again from their stored legs, and those whose rows would change are parsed again.
`--full-refresh` parses every event again and replaces the table, e.g. after the parser
changed.

The table is partitioned by the UTC day of its events (`event_date`): a merge is bounded
to the days of its rows, so it scans and rewrites those days' files, not the whole table;
a table written before the partitions is rewritten into them once (lake/layout.py).

Legs are what the trading wallet's own balances did (stream/swaps.py); their USD
values come from the quote leg, bronze.token_prices or the latest token snapshot
(stream/valuation.py); `is_smart_wallet` from gold.smart_wallets when it exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from smarttrader_cli.lake.readers import latest_prices, smart_wallets
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS, WEBHOOK_SWAPS, WEBHOOK_UNPRICED
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.changes import SinceCursor
    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext
    from smarttrader_cli.stages.prices import PriceBook

log = logging.getLogger("st.silver.webhooks")

STAGE = "silver.webhooks"
CHUNK_EVENTS = 50_000
LAMPORTS_PER_SOL = 10**9


@dataclass
class SwapsResult:
    """What one run did."""

    events: int = 0
    legs: int = 0
    inserted: int = 0
    updated: int = 0
    repriced: int = 0  # events with unpriced legs parsed again: a price came, or the list
    unpriced: int = 0  # events of the lookback with unpriced legs
    revalued: int = 0  # of those, the events a change reached (valued again in memory)
    reach: str = ""  # which changes were looked for (unpriced_reach.py), or why all
    unpriced_from: str = ""  # where their legs were read (webhook_unpriced.py)
    bronze_version: int | None = None  # the bronze version read through (the new cursor)
    read: str = ""  # which events were read, and why


@dataclass(frozen=True)
class Valuation:
    """What pricing the legs of a run needs: prices, the quote assets and the SOL dust."""

    book: PriceBook
    snapshot: dict[str, float]
    quote_assets: frozenset[str]
    sol_dust_lamports: int

    @classmethod
    def from_lake(cls, lake: Lake, config: Config, since: datetime | None = None) -> Valuation:
        """The valuation the lake gives; price points read from `since` on (older on demand)."""
        from smarttrader_cli.stages.prices import PriceBook, canonical_asset

        staleness = config.prices.max_staleness_seconds
        quotes = {canonical_asset(a) for a in config.pnl.quote_assets}
        quotes |= set(config.prices.stablecoins) | {
            canonical_asset(a) for a in config.prices.assets
        }
        return cls(
            PriceBook.from_lake(
                lake, config.prices, None if since is None else int(since.timestamp()) - staleness
            ),
            latest_prices(lake),
            frozenset(quotes),
            round(config.swaps.sol_dust * LAMPORTS_PER_SOL),
        )


def legs_table(
    events: pa.Table, valuation: Valuation, smart: set[str], now: datetime, run_id: str
) -> pa.Table:
    """Swap-leg rows for a table of bronze events (signature, payload, ...)."""
    from smarttrader_cli.stream.swaps import parse_swap
    from smarttrader_cli.stream.valuation import value_legs

    rows: list[dict[str, Any]] = []
    columns = ("signature", "payload", "event_type", "source", "slot", "event_timestamp")
    for sig, payload, event_type, source, slot, ts in zip(
        *(events.column(c).to_pylist() for c in columns), strict=True
    ):
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue  # bronze only holds parseable events; nothing to do for a bad one
        if not isinstance(event, dict):
            continue
        legs = parse_swap(event, sol_dust_lamports=valuation.sol_dust_lamports).legs
        if not legs:
            continue
        event_time = datetime.fromtimestamp(ts, UTC) if ts is not None else None
        values = value_legs(legs, ts, valuation.book, valuation.snapshot, valuation.quote_assets)
        for leg, value in zip(legs, values, strict=True):
            rows.append(
                {
                    "signature": sig,
                    "wallet": leg.wallet,
                    "leg": leg.leg,
                    "direction": leg.direction,
                    "token_address": leg.token_address,
                    "amount": leg.amount,
                    "amount_raw": str(leg.amount_raw),
                    "decimals": leg.decimals,
                    "price_usd": value.price_usd,
                    "value_usd": value.value_usd,
                    "price_source": value.price_source,
                    "unpriced_reason": value.unpriced_reason,
                    "source": source,
                    "event_type": event_type,
                    "slot": slot,
                    "event_time": event_time,
                    "parsed_from": leg.parsed_from,
                    "is_smart_wallet": leg.wallet in smart,
                    "processed_at": now,
                    "run_id": run_id,
                }
            )
    return pa.Table.from_pylist(rows, schema=WEBHOOK_SWAPS.schema)


_EVENT_COLUMNS = [
    "signature",
    "payload",
    "event_type",
    "source",
    "slot",
    "event_timestamp",
]


def events_to_read(lake: Lake, bronze: DeltaTable, full_refresh: bool) -> SinceCursor:
    """The bronze events this run parses: those the commits after the cursor added, or
    every event of the `bronze` snapshot (and why).
    """
    from dataclasses import replace

    from smarttrader_cli.lake.changes import since_cursor

    new = since_cursor(lake, WEBHOOK_EVENTS, bronze, STAGE, WEBHOOK_SWAPS)
    every = bronze.to_pyarrow_dataset
    if full_refresh:
        return replace(new, dataset=every(), why="every event (--full-refresh)", everything=True)
    if new.dataset is not None:
        return new
    (log.info if new.first else log.warning)("%s: every event is read", new.why)
    return replace(new, dataset=every(), why=f"every event ({new.why})", everything=True)


def build_swaps(
    lake: Lake, meta: CommitMeta, valuation: Valuation, full_refresh: bool = False,
    reprice_since: datetime | None = None,
) -> SwapsResult:  # fmt: skip
    """Parse new bronze events into swap legs and merge them into silver.webhook_swaps.

    Events of legs still unpriced since `reprice_since` whose rows the valuation would
    change are parsed again too (their SOL price may have arrived since); they are read from
    silver.webhook_unpriced, which the run then brings up to date (webhook_unpriced.py). A
    full refresh parses every event and replaces the table in one commit (after a parser
    upgrade, old rows may have other keys). The last commit to silver carries the cursor:
    the bronze version this run read through.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from smarttrader_cli.stages import unpriced_reach, webhook_unpriced

    result = SwapsResult()
    if not lake.exists(WEBHOOK_EVENTS):
        return result
    silver = None
    if lake.exists(WEBHOOK_SWAPS):  # a table from before price_source and friends gains them
        lake.ensure_table(WEBHOOK_SWAPS)
        silver = lake.table(WEBHOOK_SWAPS)
    unpriced = None
    if reprice_since is not None and not full_refresh:  # as of silver before this run
        unpriced = webhook_unpriced.load(lake, silver, reprice_since)
        result.unpriced_from = unpriced.source
    bronze = lake.table(WEBHOOK_EVENTS)
    new = events_to_read(lake, bronze, full_refresh)
    assert new.dataset is not None
    dataset, result.read, cursor = new.dataset, new.why, [new.cursor]
    result.bronze_version = new.cursor[1]
    smart = smart_wallets(lake)
    now = datetime.now(UTC)
    pending: list[pa.Table] = []
    written: list[pa.Table] = []  # every leg this run writes, for silver.webhook_unpriced
    pending_events = 0
    for batch in dataset.to_batches(columns=_EVENT_COLUMNS, batch_size=CHUNK_EVENTS):
        if not batch.num_rows:
            continue
        table = pa.Table.from_batches([batch])
        result.events += table.num_rows
        pending.append(legs_table(table, valuation, smart, now, meta.run_id))
        pending_events += table.num_rows
        if pending_events >= CHUNK_EVENTS and not full_refresh:
            marker = [(partial_id(new.cursor[0]), new.cursor[1])]
            written.append(_merge(lake, meta, pa.concat_tables(pending), result, marker))
            pending, pending_events = [], 0
    # Legs of events silver holds no leg of yet are appended: that costs what they are,
    # where a merge scans and rewrites their days' files. Events after the cursor are
    # such when the files read held only rows added after it and no run stopped after
    # merging a chunk past it; otherwise (a compacted file read whole holds events read
    # before) their days' signatures are looked at first. A merge of a chunk without the
    # cursor, or every event read, merges all.
    fresh = None
    if not (new.everything or written):
        unread = _concat(pending)
        if _only_new(lake, silver, dataset, new.cursor[0]) or _unseen(silver, unread):
            fresh, pending = unread, []
    if unpriced is not None:
        reach, result.reach = unpriced_reach.reached(
            lake, unpriced.companion, unpriced.rows, valuation, smart
        )
        signatures, earliest, result.revalued = webhook_unpriced.stale(reach, valuation, smart)
        rows = unpriced.rows
        result.unpriced = pc.count_distinct(rows.column(0)).as_py() if rows.num_rows else 0
        if signatures:
            # Stats prune bronze to the files holding events of those block times.
            flt = ds.field("signature").isin(signatures)
            if earliest is not None:
                flt &= ds.field("event_timestamp") >= earliest
            again = bronze.to_pyarrow_dataset().to_table(columns=_EVENT_COLUMNS, filter=flt)
            result.repriced = again.num_rows
            pending.append(legs_table(again, valuation, smart, now, meta.run_id))
    legs = _concat(pending)
    if full_refresh:
        lake.overwrite(WEBHOOK_SWAPS, legs, meta, app_transactions=cursor)
        result.legs = result.inserted = legs.num_rows
        written.append(legs)
    elif fresh is not None and fresh.num_rows:
        written.append(_append(lake, meta, fresh, result, cursor))
        if legs.num_rows:
            written.append(_merge(lake, meta, legs, result))
    elif result.events or result.repriced:
        if fresh is not None:
            legs = pa.concat_tables([fresh, legs])
        written.append(_merge(lake, meta, legs, result, cursor))
    marks = unpriced_reach.marks(valuation)
    moved = unpriced is not None and unpriced_reach.moved(unpriced.companion, marks)
    if reprice_since is not None and (written or moved):
        before = unpriced.rows if unpriced is not None else WEBHOOK_UNPRICED.schema.empty_table()
        after = webhook_unpriced.carried(before, written, reprice_since)
        webhook_unpriced.save(lake, meta, after, reprice_since, marks)
    return result


def _concat(legs: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(legs) if legs else WEBHOOK_SWAPS.schema.empty_table()


def partial_id(cursor_id: str) -> str:
    """The `txn` app id a run's chunk merges (without the cursor) mark their bronze version
    under, so the next run knows that legs past its cursor may be in silver already."""
    return f"{cursor_id}/chunks"


def _only_new(lake: Lake, silver: DeltaTable | None, dataset: Any, cursor_id: str) -> bool:
    """Whether the events read are surely new to silver: read from files that held only
    rows added after the cursor, and no chunk of a run past the cursor was merged."""
    from smarttrader_cli.lake.changes import ChangedRows

    if silver is None or not isinstance(dataset, ChangedRows) or not dataset.exact:
        return silver is None
    chunks = silver.transaction_version(partial_id(cursor_id))
    return chunks is None or chunks <= dataset.changes.after


def _unseen(silver: DeltaTable | None, legs: pa.Table) -> bool:
    """Whether `silver` holds no leg of the events of `legs` (it reads the signatures of
    their days' partitions)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if silver is None or not legs.num_rows:
        return True
    days = pc.unique(pc.cast(legs.column("event_time"), pa.date32()))
    on_days = ds.field("event_date").isin(days.drop_null())
    if days.null_count:
        on_days |= ds.field("event_date").is_null()
    held = silver.to_pyarrow_dataset().to_table(columns=["signature"], filter=on_days)
    if not held.num_rows:
        return True
    signatures = pc.unique(legs.column("signature"))
    found = pc.is_in(held.column(0).cast(signatures.type), value_set=signatures)
    return not pc.any(found).as_py()


def _append(
    lake: Lake, meta: CommitMeta, legs: pa.Table, result: SwapsResult, cursor: list[tuple[str, int]]
) -> pa.Table:
    """Append the legs of events new to silver, with the cursor; returns them."""
    from smarttrader_cli.lake.store import dedupe_last

    legs = dedupe_last(legs, WEBHOOK_SWAPS.keys)
    lake.append(WEBHOOK_SWAPS, legs, meta, app_transactions=cursor)
    result.legs += legs.num_rows
    result.inserted += legs.num_rows
    return legs


def _merge(
    lake: Lake,
    meta: CommitMeta,
    legs: pa.Table,
    result: SwapsResult,
    cursor: list[tuple[str, int]] | None = None,
) -> pa.Table:
    """Merge legs on their key; the run's last merge also moves the cursor. Returns them."""
    merged = lake.merge(WEBHOOK_SWAPS, legs, meta, app_transactions=cursor or ())
    result.legs += legs.num_rows
    result.inserted += merged.inserted
    result.updated += merged.updated
    return legs


def _args(
    ctx: StageContext, full_refresh: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = {"full_refresh": full_refresh}
    if now is not None:
        args["now"] = now.isoformat()
    return args


@stage(
    STAGE,
    writes=WEBHOOK_SWAPS.name,
    command="st silver webhooks",
    prepare=_args,
)
def run(
    ctx: StageContext, current: StageRun, full_refresh: bool = False, now: datetime | None = None
) -> StageResult:
    """`st silver webhooks` as one stage run; unpriced legs of the `prices.lookback_hours`
    before `now` (default: the current time) are priced again."""
    from smarttrader_cli.lake.layout import repartition_from_writer

    now = now or datetime.now(UTC)
    repartition_from_writer(ctx.lake, WEBHOOK_SWAPS, current.meta, ctx.config.runtime.state_dir)
    reprice_since = now - timedelta(hours=ctx.config.prices.lookback_hours)
    # New events are mostly recent, repriced legs newer than reprice_since: older price
    # points are read only when an event needs them (a late one, a full refresh).
    valuation = Valuation.from_lake(ctx.lake, ctx.config, reprice_since)
    swaps = build_swaps(ctx.lake, current.meta, valuation, full_refresh, reprice_since)
    current.rows_in, current.rows_out = swaps.events, swaps.legs
    log.info("silver.webhook_swaps: %d events → %d legs", swaps.events, swaps.legs)
    return run_result(
        current,
        events=swaps.events,
        legs=swaps.legs,
        inserted=swaps.inserted,
        updated=swaps.updated,
        repriced=swaps.repriced,
        unpriced=swaps.unpriced,
        unpriced_from=swaps.unpriced_from,
        revalued=swaps.revalued,
        reach=swaps.reach,
        bronze_version=swaps.bronze_version,
        read=swaps.read,
    )
