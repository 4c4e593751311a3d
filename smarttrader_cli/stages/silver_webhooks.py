"""`st silver webhooks`: bronze.webhook_events → silver.webhook_swaps, one row per swap leg.

Incremental: each commit records in its metadata `bronze_ingested_through`, the newest
`ingested_at` of the events it processed; the next run reads only events ingested after
that, minus a lookback margin (re-processing is harmless: rows are merged on their key
(signature, wallet, leg)). `--full-refresh` processes every event again, e.g. after the
smart-wallet list changed. Prices: the latest `price` per token in bronze.token_metrics
(SOL through its wSOL row); `is_smart_wallet` from gold.smart_wallets when it exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_METRICS, WEBHOOK_EVENTS, WEBHOOK_SWAPS
from smarttrader_cli.stream.parse import swap_legs

if TYPE_CHECKING:
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.silver.webhooks")

WATERMARK_KEY = "bronze_ingested_through"
LOOKBACK = timedelta(minutes=10)
CHUNK_EVENTS = 50_000


@dataclass
class SwapsResult:
    """What one run did."""

    events: int = 0
    legs: int = 0
    inserted: int = 0
    updated: int = 0
    watermark: datetime | None = None


def last_watermark(lake: Lake) -> datetime | None:
    """The newest bronze `ingested_at` a previous run recorded in silver's Delta log."""
    if not lake.exists(WEBHOOK_SWAPS):
        return None
    for commit in lake.history(WEBHOOK_SWAPS, limit=50):
        value = commit.get(WATERMARK_KEY)
        if value:
            return datetime.fromisoformat(str(value))
    return None


def latest_prices(lake: Lake) -> dict[str, float]:
    """Token address → its latest BirdEye price (empty if no token snapshot exists)."""
    if not lake.exists(TOKEN_METRICS):
        return {}
    table = lake.read(TOKEN_METRICS, columns=["token_address", "snapshot_at", "price"])
    latest: dict[str, tuple[Any, float]] = {}
    for token, at, price in zip(
        *(table.column(c).to_pylist() for c in table.column_names), strict=True
    ):
        if price is None:
            continue
        if token not in latest or at > latest[token][0]:
            latest[token] = (at, float(price))
    return {token: price for token, (_, price) in latest.items()}


def smart_wallets(lake: Lake) -> set[str]:
    if not lake.exists(SMART_WALLETS):
        return set()
    return set(lake.read(SMART_WALLETS, columns=["wallet_address"]).column(0).to_pylist())


def legs_table(
    events: pa.Table, prices: dict[str, float], smart: set[str], now: datetime, run_id: str
) -> pa.Table:
    """Swap-leg rows for a table of bronze events (signature, payload, ...)."""
    rows: list[dict[str, Any]] = []
    columns = ("signature", "payload", "event_type", "source", "slot", "event_timestamp")
    for sig, payload, event_type, source, slot, ts in zip(
        *(events.column(c).to_pylist() for c in columns), strict=True
    ):
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue  # bronze only holds parseable events; nothing to do for a bad one
        event_time = datetime.fromtimestamp(ts, UTC) if ts is not None else None
        for leg in swap_legs(event):
            price = prices.get(leg.token_address)
            rows.append(
                {
                    "signature": sig,
                    "wallet": leg.wallet,
                    "leg": leg.leg,
                    "direction": leg.direction,
                    "token_address": leg.token_address,
                    "amount": leg.amount,
                    "price_usd": price,
                    "value_usd": leg.amount * price if price is not None else None,
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


def build_swaps(lake: Lake, meta: CommitMeta, full_refresh: bool = False) -> SwapsResult:
    """Parse new bronze events into swap legs and merge them into silver.webhook_swaps."""
    import pyarrow.compute as pc

    result = SwapsResult()
    if not lake.exists(WEBHOOK_EVENTS):
        return result
    since = None if full_refresh else last_watermark(lake)
    columns = [
        "signature",
        "payload",
        "event_type",
        "source",
        "slot",
        "event_timestamp",
        "ingested_at",
    ]
    dataset = lake.table(WEBHOOK_EVENTS).to_pyarrow_dataset()
    import pyarrow.dataset as ds

    flt = (
        None
        if since is None
        else ds.field("ingested_at") > pa.scalar(since - LOOKBACK, pa.timestamp("us", tz="UTC"))
    )
    prices = latest_prices(lake)
    smart = smart_wallets(lake)
    now = datetime.now(UTC)
    newest = since
    pending: list[pa.Table] = []
    pending_events = 0
    for batch in dataset.to_batches(columns=columns, filter=flt, batch_size=CHUNK_EVENTS):
        if not batch.num_rows:
            continue
        table = pa.Table.from_batches([batch])
        result.events += table.num_rows
        top = pc.max(table.column("ingested_at")).as_py()
        newest = top if newest is None or (top is not None and top > newest) else newest
        pending.append(legs_table(table, prices, smart, now, meta.run_id))
        pending_events += table.num_rows
        if pending_events >= CHUNK_EVENTS:
            _merge(lake, meta, pa.concat_tables(pending), result, None)
            pending, pending_events = [], 0
    if result.events:
        _merge(lake, meta, pa.concat_tables(pending) if pending else None, result, newest)
    result.watermark = newest
    return result


def _merge(
    lake: Lake,
    meta: CommitMeta,
    legs: pa.Table | None,
    result: SwapsResult,
    watermark: datetime | None,
) -> None:
    from smarttrader_cli.lake.store import CommitMeta as Meta

    extra = dict(meta.extra)
    if watermark is not None:
        extra[WATERMARK_KEY] = watermark.isoformat()
    commit = Meta(meta.run_id, meta.stage, meta.config_hash, extra)
    legs = legs if legs is not None else WEBHOOK_SWAPS.schema.empty_table()
    if not legs.num_rows and watermark is None:
        return
    merged = lake.merge(WEBHOOK_SWAPS, legs, commit)
    result.legs += legs.num_rows
    result.inserted += merged.inserted
    result.updated += merged.updated


def run_silver_webhooks(app: AppContext, full_refresh: bool = False) -> SwapsResult:
    """`st silver webhooks` as one stage run."""
    from smarttrader_cli.ops.runs import stage_run

    with stage_run(app, "silver.webhooks", {"full_refresh": full_refresh}) as run:
        result = build_swaps(app.lake, run.meta, full_refresh)
        run.rows_in, run.rows_out = result.events, result.legs
    log.info("silver.webhook_swaps: %d events → %d legs", result.events, result.legs)
    return result
