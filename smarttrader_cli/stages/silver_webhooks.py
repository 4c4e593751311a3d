"""`st silver webhooks`: bronze.webhook_events → silver.webhook_swaps, one row per swap leg.

Incremental by Delta version: each run commits, with its legs, a cursor (the bronze
version it read through, lake/changes.py) and the next run parses only the events the
bronze commits after it added, however late their block time. Compaction of bronze
adds nothing new, so it is not read again. When the cursor cannot be followed (no
cursor yet, bronze recreated, its commits expired from the log) every event is read,
and the log says why. Re-processing is harmless: rows are merged on their key
(signature, wallet, leg). The events whose legs are still unpriced are parsed again
too (their price may have arrived). `--full-refresh` parses every event again and
replaces the table, e.g. after the smart-wallet list or the parser changed.

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
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS, WEBHOOK_SWAPS
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
    repriced: int = 0  # events parsed again because some of their legs were unpriced
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


def unpriced_signatures(lake: Lake, since: datetime) -> tuple[list[str], int | None]:
    """Events of legs left unpriced since `since` (a later price may value them now), and
    the earliest of their block times (unix seconds), which bounds the bronze read.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not lake.exists(WEBHOOK_SWAPS):
        return [], None
    dataset = lake.table(WEBHOOK_SWAPS).to_pyarrow_dataset()
    flt = ds.field("unpriced_reason").is_valid() & (
        ds.field("event_time") >= pa.scalar(since, pa.timestamp("us", tz="UTC"))
    )
    found = dataset.to_table(columns=["signature", "event_time"], filter=flt)
    if not found.num_rows:
        return [], None
    earliest = pc.min(found.column("event_time")).as_py()
    return pc.unique(found.column("signature")).to_pylist(), int(earliest.timestamp())


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
    if full_refresh:
        return replace(new, dataset=bronze.to_pyarrow_dataset(), why="every event (--full-refresh)")
    if new.dataset is not None:
        return new
    (log.info if new.first else log.warning)("%s: every event is read", new.why)
    return replace(new, dataset=bronze.to_pyarrow_dataset(), why=f"every event ({new.why})")


def build_swaps(
    lake: Lake, meta: CommitMeta, valuation: Valuation, full_refresh: bool = False,
    reprice_since: datetime | None = None,
) -> SwapsResult:  # fmt: skip
    """Parse new bronze events into swap legs and merge them into silver.webhook_swaps.

    Events of legs still unpriced since `reprice_since` are parsed again too (their SOL
    price may have arrived since). A full refresh parses every event and replaces the
    table in one commit (after a parser upgrade, old rows may have other keys). The last
    commit carries the cursor: the bronze version this run read through.
    """
    import pyarrow.dataset as ds

    result = SwapsResult()
    if not lake.exists(WEBHOOK_EVENTS):
        return result
    if lake.exists(WEBHOOK_SWAPS):  # a table from before price_source and friends gains them
        lake.ensure_table(WEBHOOK_SWAPS)
    bronze = lake.table(WEBHOOK_EVENTS)
    new = events_to_read(lake, bronze, full_refresh)
    assert new.dataset is not None
    dataset, result.read, cursor = new.dataset, new.why, [new.cursor]
    result.bronze_version = new.cursor[1]
    smart = smart_wallets(lake)
    now = datetime.now(UTC)
    pending: list[pa.Table] = []
    pending_events = 0
    for batch in dataset.to_batches(columns=_EVENT_COLUMNS, batch_size=CHUNK_EVENTS):
        if not batch.num_rows:
            continue
        table = pa.Table.from_batches([batch])
        result.events += table.num_rows
        pending.append(legs_table(table, valuation, smart, now, meta.run_id))
        pending_events += table.num_rows
        if pending_events >= CHUNK_EVENTS and not full_refresh:
            _merge(lake, meta, pa.concat_tables(pending), result)
            pending, pending_events = [], 0
    if not full_refresh and reprice_since is not None:
        signatures, earliest = unpriced_signatures(lake, reprice_since)
        if signatures:
            # Stats prune bronze to the files holding events of those block times.
            flt = ds.field("signature").isin(signatures)
            if earliest is not None:
                flt &= ds.field("event_timestamp") >= earliest
            again = bronze.to_pyarrow_dataset().to_table(columns=_EVENT_COLUMNS, filter=flt)
            result.repriced = again.num_rows
            pending.append(legs_table(again, valuation, smart, now, meta.run_id))
    legs = pa.concat_tables(pending) if pending else WEBHOOK_SWAPS.schema.empty_table()
    if full_refresh:
        lake.overwrite(WEBHOOK_SWAPS, legs, meta, app_transactions=cursor)
        result.legs = result.inserted = legs.num_rows
    elif result.events or result.repriced:
        _merge(lake, meta, legs, result, cursor)
    return result


def _merge(
    lake: Lake,
    meta: CommitMeta,
    legs: pa.Table,
    result: SwapsResult,
    cursor: list[tuple[str, int]] | None = None,
) -> None:
    """Merge legs on their key; the run's last merge also moves the cursor."""
    merged = lake.merge(WEBHOOK_SWAPS, legs, meta, app_transactions=cursor or ())
    result.legs += legs.num_rows
    result.inserted += merged.inserted
    result.updated += merged.updated


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
    now = now or datetime.now(UTC)
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
        bronze_version=swaps.bronze_version,
        read=swaps.read,
    )
