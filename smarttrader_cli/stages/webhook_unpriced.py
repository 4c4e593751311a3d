"""The still-unpriced legs of silver.webhook_swaps, kept beside it in silver.webhook_unpriced.

A `st silver webhooks` run values again the events of `prices.lookback_hours` with a leg
left unpriced that a change since this table was written can reach (a price point near
their time, a smart-wallet flag, a snapshot: unpriced_reach.py), since a price may have
come for them. Looked for in silver.webhook_swaps,
they cost a read of every leg of the lookback (48 hours of legs, of which the bench leaves
about a tenth unpriced); kept in a table of their own, the run reads those legs alone.

silver.webhook_swaps stays the truth; this table is derived from it. After each run that
changed silver it is rewritten whole (one overwrite commit of a small table: the lookback's
unpriced events) with, as `txn`s, the silver version it describes and the lookback's start.
A run uses it only if its own lookback starts no earlier and silver gained no data after
that version (commits without data change, a compaction's, do
not count: lake/changes.py). Otherwise (killed between silver's commit and this one, a full
refresh, a migration, a delete, silver recreated) the legs are read from silver, as every
run read them before, and the next commit of this table makes it current again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from smarttrader_cli.lake.tables import WEBHOOK_SWAPS, WEBHOOK_UNPRICED

if TYPE_CHECKING:
    from collections.abc import Sequence

    from deltalake import DeltaTable

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.stages.silver_webhooks import Valuation

log = logging.getLogger("st.silver.webhooks")

READER = "silver.webhooks"
# The `txn` holding the bound (unix seconds) the table was written with: a run repricing
# from further back (an earlier `now`) cannot use it.
BOUND = f"{READER}/unpriced-since"
VALUED = WEBHOOK_UNPRICED.schema.names  # what valuing a stored leg again takes, and gave
_OUTCOME = ("price_usd", "value_usd", "price_source", "unpriced_reason")


@dataclass(frozen=True)
class Unpriced:
    """The legs of the events with a leg unpriced since a bound, and where they were read."""

    rows: pa.Table  # VALUED columns
    source: str
    current: bool  # silver.webhook_unpriced described silver as read (False: rewrite it)
    companion: DeltaTable | None = None  # the snapshot of it read (None: read from silver)


def _since(since: datetime) -> Any:
    import pyarrow.dataset as ds

    return ds.field("event_time") >= pa.scalar(since, pa.timestamp("us", tz="UTC"))


def app_id(silver: DeltaTable) -> str:
    """The `txn` app id under which the table records the silver version it describes
    (silver's table id in it: a recreated silver is another table)."""
    from smarttrader_cli.lake.changes import cursor_app_id, table_id

    return cursor_app_id(READER, WEBHOOK_SWAPS, table_id(silver))


def load(lake: Lake, silver: DeltaTable | None, since: datetime) -> Unpriced:
    """The unpriced events' legs since `since`, as of the `silver` snapshot (None: no
    silver yet): from silver.webhook_unpriced when it describes that snapshot."""
    from smarttrader_cli.lake.changes import ChangesUnavailable, added_since

    if silver is None:
        return Unpriced(WEBHOOK_UNPRICED.schema.empty_table(), "no silver yet", True)
    why = ""
    if not lake.exists(WEBHOOK_UNPRICED):
        why = f"{WEBHOOK_UNPRICED.name} is new"
    else:
        companion = lake.table(WEBHOOK_UNPRICED)
        at = companion.transaction_version(app_id(silver))
        bound = companion.transaction_version(BOUND)
        if at is None:
            why = f"{WEBHOOK_UNPRICED.name} describes no version of this {WEBHOOK_SWAPS.name}"
        elif bound is None or since.timestamp() < bound:
            why = f"{WEBHOOK_UNPRICED.name} holds events from {bound} on, not from {since}"
        else:
            try:
                gained = added_since(lake, WEBHOOK_SWAPS, silver, at).paths
            except ChangesUnavailable as exc:
                gained, why = (), f"the commits after version {at} cannot be read: {exc}"
            if gained:
                why = f"{WEBHOOK_SWAPS.name} gained data after version {at}, which it describes"
            if not why:
                rows = companion.to_pyarrow_dataset().to_table(columns=VALUED, filter=_since(since))
                return Unpriced(rows, WEBHOOK_UNPRICED.name, True, companion)
    log.info("unpriced legs read from %s: %s", WEBHOOK_SWAPS.name, why)
    return Unpriced(_from_silver(silver, since), f"{WEBHOOK_SWAPS.name} ({why})", False)


def _from_silver(silver: DeltaTable, since: datetime) -> pa.Table:
    """Every leg of the lookback in silver, narrowed to the events with an unpriced leg."""
    import pyarrow.dataset as ds

    flt = _since(since)
    if "event_date" in silver.metadata().partition_columns:
        flt &= ds.field("event_date") >= pa.scalar(since.date(), pa.date32())  # partitions
    return still_unpriced(silver.to_pyarrow_dataset().to_table(columns=VALUED, filter=flt))


def still_unpriced(legs: pa.Table, since: datetime | None = None) -> pa.Table:
    """The legs (VALUED columns) of the events in `legs` with a leg unpriced, of block
    time `since` on."""
    legs = legs.select(VALUED)
    if since is not None:
        legs = legs.filter(_since(since))
    unpriced = pc.unique(legs.filter(pc.is_valid(legs.column("unpriced_reason"))).column(0))
    return legs.filter(pc.is_in(legs.column("signature"), unpriced))


def carried(before: pa.Table, written: list[pa.Table], since: datetime) -> pa.Table:
    """The table after a run: the unpriced events it held whose legs the run did not write,
    then those of the written legs that are still unpriced, of block time `since` on."""
    parts = [still_unpriced(legs, since) for legs in written if legs.num_rows]
    signatures = [legs.column("signature") for legs in written if legs.num_rows]
    kept = before.filter(_since(since))
    if signatures:
        wrote = pc.unique(pa.chunked_array([c for s in signatures for c in s.chunks], pa.string()))
        kept = kept.filter(pc.invert(pc.is_in(kept.column("signature"), wrote)))
    return pa.concat_tables([kept.select(VALUED), *parts])


def save(
    lake: Lake,
    meta: CommitMeta,
    rows: pa.Table,
    since: datetime,
    valued_with: Sequence[tuple[str, int]] = (),
) -> None:
    """Replace the table with `rows` (the unpriced events of block time `since` on),
    recording silver's version now as the one it describes (the caller committed to silver
    last, under the stage's lock), `since` and what the legs are valued with
    (unpriced_reach.marks)."""
    silver = lake.table(WEBHOOK_SWAPS)
    described = [(app_id(silver), silver.version()), (BOUND, int(since.timestamp()))]
    described += list(valued_with)
    lake.overwrite(WEBHOOK_UNPRICED, rows, meta, app_transactions=described)


def stale(
    rows: pa.Table, valuation: Valuation, smart: set[str]
) -> tuple[list[str], int | None, int]:
    """Of the unpriced events' legs `rows`, the events this run would write otherwise (a
    price, a late point or a snapshot arrived since they were valued, the smart-wallet list
    changed), the earliest of their block times (unix seconds, it bounds the bronze read) and
    how many events there are.

    Their stored legs are valued again in memory, as `legs_table` values parsed ones: only
    the events whose rows would change are parsed again, so a run costs what changed, not
    every unpriced event of the lookback.
    """
    from smarttrader_cli.stream.swaps import SwapLeg
    from smarttrader_cli.stream.valuation import value_legs

    count = pc.count_distinct(rows.column("signature")).as_py() if rows.num_rows else 0
    open_ = pc.unique(rows.filter(pc.invert(_unknowable(rows, valuation, smart))).column(0))
    events: dict[str, list[dict[str, Any]]] = {}
    for row in rows.filter(pc.is_in(rows.column("signature"), open_)).to_pylist():
        events.setdefault(row["signature"], []).append(row)
    found, earliest = [], None
    for signature, legs in events.items():
        legs.sort(key=lambda r: r["leg"])
        at = int(legs[0]["event_time"].timestamp())
        parsed = [
            SwapLeg(
                r["wallet"],
                r["leg"],
                r["direction"],
                r["token_address"],
                r["amount"],
                int(r["amount_raw"] or 0),
                r["decimals"],
                r["parsed_from"],
            )
            for r in legs
        ]
        values = value_legs(parsed, at, valuation.book, valuation.snapshot, valuation.quote_assets)
        if any(
            (r["is_smart_wallet"] != (r["wallet"] in smart))
            or any(getattr(value, k) != r[k] for k in _OUTCOME)
            for r, value in zip(legs, values, strict=True)
        ):
            found.append(signature)
            earliest = at if earliest is None else min(earliest, at)
    return found, earliest, count


def _unknowable(rows: pa.Table, valuation: Valuation, smart: set[str]) -> pa.Array:
    """Per leg: stored as a token no price source knows, and still one (not in the book
    from the lookback on, which holds every point usable there, nor a stablecoin, a quote
    asset or in the snapshot), with its wallet's smart flag unchanged. Valuing an event
    all of whose legs are such gives what is stored (value_legs: every leg on its own, no
    quote leg to anchor on), so it is not valued again."""
    from smarttrader_cli.stages.prices import NATIVE_SOL, WSOL
    from smarttrader_cli.stream.valuation import NO_KNOWN_PRICE

    book = valuation.book
    known = pa.array(
        sorted(set(book.series) | book.stablecoins | set(valuation.snapshot)), pa.string()
    )
    token = rows.column("token_address")
    canonical = pc.if_else(pc.equal(token, NATIVE_SOL), WSOL, token)
    smart_now = pc.is_in(rows.column("wallet"), pa.array(sorted(smart), pa.string()))
    unknowable = pc.and_(
        pc.invert(pc.is_in(canonical, known)),
        pc.invert(pc.is_in(token, pa.array(sorted(valuation.quote_assets), pa.string()))),
    )
    if book.loaded_from is not None:  # points the book has not read could be usable there
        earliest = book.loaded_from + book.max_staleness_seconds
        read = pa.scalar(earliest * 10**6, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        unknowable = pc.and_(unknowable, pc.greater_equal(rows.column("event_time"), read))
    for condition in (
        pc.equal(rows.column("unpriced_reason"), NO_KNOWN_PRICE),
        pc.is_null(rows.column("price_usd")),
        pc.is_null(rows.column("value_usd")),
        pc.is_null(rows.column("price_source")),
        pc.equal(rows.column("is_smart_wallet"), smart_now),
    ):
        unknowable = pc.and_(unknowable, condition)
    return pc.fill_null(unknowable, False)
