"""`st bronze whales`: the wallets to follow, from the latest token snapshot's tokens.

Always their top holders (bronze.whale_holders). With `discovery.top_traders` also each
token's top traders, and with `discovery.gainers` BirdEye's top wallets by PnL, one row
per list entry in bronze.wallet_sources; `st bronze trades` follows holders and
discovered wallets alike. Lists fetched within `discovery.refetch_after_hours` are
skipped, as holders are within `whales.refetch_after_hours`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import TOKEN_METRICS, WALLET_SOURCES, WHALE_HOLDERS
from smarttrader_cli.sources.records import ALL_TOKENS, GAINERS_SOURCE, TOP_TRADERS_SOURCE
from smarttrader_cli.stages.bronze_common import arrow_table, birdeye, now_seconds, write_rejects
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Fetched
    from smarttrader_cli.sources.records import WalletSourceRecord
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze")


def latest_tokens(lake: Lake, max_tokens: int) -> list[dict[str, Any]]:
    """Tokens of the latest token_metrics snapshot, by liquidity, at most `max_tokens`."""
    import pyarrow.compute as pc

    cols = ["token_address", "snapshot_at", "liquidity", "price", "market_cap"]
    table = lake.read(TOKEN_METRICS, columns=cols)
    if table.num_rows == 0:
        return []
    latest = pc.max(table["snapshot_at"])
    rows = table.filter(pc.equal(table["snapshot_at"], latest)).to_pylist()
    rows.sort(key=lambda r: (-(r["liquidity"] or 0.0), r["token_address"]))
    return rows[:max_tokens]


def recently_fetched(lake: Lake, since: datetime) -> set[str]:
    """Tokens whose holders were fetched at or after `since`."""
    import pyarrow.compute as pc

    table = lake.read(WHALE_HOLDERS, columns=["token_address", "snapshot_at"])
    if table.num_rows == 0:
        return set()
    recent = table.filter(pc.greater_equal(table["snapshot_at"], since))
    return set(recent["token_address"].to_pylist())


def recently_listed(lake: Lake, since: datetime) -> set[tuple[str, str, str]]:
    """(source, scope, time_frame) of the discovery lists fetched at or after `since`."""
    import pyarrow.compute as pc

    table = lake.read(WALLET_SOURCES, columns=["source", "scope", "time_frame", "snapshot_at"])
    if table.num_rows == 0:
        return set()
    recent = table.filter(pc.greater_equal(table["snapshot_at"], since)).to_pylist()
    return {(r["source"], r["scope"], r["time_frame"]) for r in recent}


def discovery_lists(
    ctx: StageContext, tokens: list[dict[str, Any]], since: datetime
) -> list[tuple[str, str, str]]:
    """The discovery lists to fetch this run: (source, scope, time_frame), recent ones skipped."""
    cfg = ctx.config.discovery
    wanted: list[tuple[str, str, str]] = []
    if cfg.top_traders:
        frame = cfg.top_traders_time_frame
        wanted += [(TOP_TRADERS_SOURCE, t["token_address"], frame) for t in tokens]
    if cfg.gainers:
        wanted += [(GAINERS_SOURCE, ALL_TOKENS, p) for p in dict.fromkeys(cfg.gainers_time_frames)]
    if not wanted:
        return []
    fresh = recently_listed(ctx.lake, since)
    return [w for w in wanted if w not in fresh]


def _prepare(ctx: StageContext) -> dict[str, Any]:
    cfg = ctx.config.discovery
    recorded: dict[str, Any] = {"top_holders": ctx.config.whales.top_holders}
    if cfg.top_traders:
        recorded["top_traders"] = (
            f"{cfg.top_traders_per_token} per token, {cfg.top_traders_time_frame}"
        )
    if cfg.gainers:
        recorded["gainers"] = (
            f"{cfg.gainers_per_list} per list, {','.join(cfg.gainers_time_frames)}"
        )
    return recorded


@stage("bronze.whales", writes=WHALE_HOLDERS.name, command="st bronze whales", prepare=_prepare)
def run(ctx: StageContext, current: StageRun) -> StageResult:
    """Top holders of the latest snapshot's tokens → bronze.whale_holders; with discovery on,
    their top traders and the gainers lists → bronze.wallet_sources."""
    cfg, found = ctx.config.whales, ctx.config.discovery
    snapshot = now_seconds()
    tokens = latest_tokens(ctx.lake, cfg.max_tokens)
    if not tokens:
        log.warning("bronze.token_metrics is empty: run `st bronze tokens` first")
    fresh = recently_fetched(ctx.lake, snapshot - timedelta(hours=cfg.refetch_after_hours))
    todo = [t for t in tokens if t["token_address"] not in fresh]
    log.info("holders of %d tokens to fetch (%d fetched recently)", len(todo), len(fresh))
    lists = discovery_lists(ctx, tokens, snapshot - timedelta(hours=found.refetch_after_hours))

    async def fetch() -> tuple[list[Fetched[Any]], list[Fetched[WalletSourceRecord]]]:
        async with birdeye(ctx, current) as client:

            def listed(source: str, scope: str, frame: str) -> Any:
                if source == TOP_TRADERS_SOURCE:
                    sort = found.top_traders_sort_by
                    return client.top_traders(scope, frame, sort, found.top_traders_per_token)
                return client.gainers(frame, found.gainers_per_list)

            jobs = [client.token_holders(t["token_address"], cfg.top_holders) for t in todo]
            holders = asyncio.gather(*jobs)
            sources = asyncio.gather(*(listed(*w) for w in lists))
            return list(await holders), list(await sources)

    results, listings = asyncio.run(fetch()) if todo or lists else ([], [])
    rows, rejects = [], []
    for token, fetched in zip(todo, results, strict=True):
        current.rows_in += fetched.items
        rejects.extend(fetched.rejects)
        price, cap = token["price"], token["market_cap"]
        supply = cap / price if price and cap else None
        for rank, h in enumerate(fetched.records, start=1):
            share = h.ui_amount / supply if supply else None
            if share is not None and share < cfg.min_share_of_supply:
                continue
            rows.append(
                {
                    "token_address": h.token_address,
                    "wallet_address": h.wallet_address,
                    "snapshot_at": snapshot,
                    "token_account": h.token_account,
                    "holder_rank": rank,
                    "amount_raw": h.amount_raw,
                    "decimals": h.decimals,
                    "ui_amount": h.ui_amount,
                    "share_of_supply": share,
                    "run_id": current.run_id,
                }
            )
    listed_rows = source_rows(lists, listings, snapshot, current, found.top_traders_sort_by)
    for fetched in listings:
        current.rows_in += fetched.items
        rejects.extend(fetched.rejects)
    if rows:
        merged = ctx.lake.merge(
            WHALE_HOLDERS, arrow_table(WHALE_HOLDERS.schema, rows), current.meta
        )
        current.rows_out = merged.inserted + merged.updated
    if listed_rows:
        table = arrow_table(WALLET_SOURCES.schema, listed_rows)
        merged = ctx.lake.merge(WALLET_SOURCES, table, current.meta)
        current.rows_out += merged.inserted + merged.updated
    write_rejects(ctx.lake, rejects, current)
    details: dict[str, Any] = {
        "rejects": len(rejects),
        "tokens_fetched": len(todo),
        "tokens_skipped": len(tokens) - len(todo),
        "wallets": len({r["wallet_address"] for r in rows}),
    }
    if found.top_traders or found.gainers:
        details["lists_fetched"] = len(lists)
        details["discovered_wallets"] = len({r["wallet_address"] for r in listed_rows})
    return run_result(current, **details)


def source_rows(
    lists: list[tuple[str, str, str]],
    listings: list[Fetched[WalletSourceRecord]],
    snapshot: datetime,
    current: StageRun,
    trader_sort: str,
) -> list[dict[str, Any]]:
    """bronze.wallet_sources rows: each list's wallets once, ranked in the order listed."""
    out = []
    for (source, _, _), fetched in zip(lists, listings, strict=True):
        seen: set[str] = set()
        for record in fetched.records:
            if record.wallet_address in seen:  # lists can shift between pages
                continue
            seen.add(record.wallet_address)
            out.append(
                {
                    **asdict(record),
                    "snapshot_at": snapshot,
                    "rank": len(seen),
                    "sort_by": trader_sort if source == TOP_TRADERS_SOURCE else "PnL",
                    "run_id": current.run_id,
                }
            )
    return out
