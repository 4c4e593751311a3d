"""`st bronze whales`: top holders of the latest token snapshot's tokens."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import TOKEN_METRICS, WHALE_HOLDERS
from smarttrader_cli.stages.bronze_common import arrow_table, birdeye, now_seconds, write_rejects
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Fetched
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


@stage(
    "bronze.whales",
    writes=WHALE_HOLDERS.name,
    command="st bronze whales",
    prepare=lambda ctx: {"top_holders": ctx.config.whales.top_holders},
)
def run(ctx: StageContext, current: StageRun) -> StageResult:
    """Top holders of the latest snapshot's tokens → bronze.whale_holders."""
    cfg = ctx.config.whales
    snapshot = now_seconds()
    tokens = latest_tokens(ctx.lake, cfg.max_tokens)
    if not tokens:
        log.warning("bronze.token_metrics is empty: run `st bronze tokens` first")
    fresh = recently_fetched(ctx.lake, snapshot - timedelta(hours=cfg.refetch_after_hours))
    todo = [t for t in tokens if t["token_address"] not in fresh]
    log.info("holders of %d tokens to fetch (%d fetched recently)", len(todo), len(fresh))

    async def fetch() -> list[Fetched[Any]]:
        async with birdeye(ctx, current) as client:
            jobs = [client.token_holders(t["token_address"], cfg.top_holders) for t in todo]
            return list(await asyncio.gather(*jobs))

    results = asyncio.run(fetch()) if todo else []
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
    if rows:
        merged = ctx.lake.merge(
            WHALE_HOLDERS, arrow_table(WHALE_HOLDERS.schema, rows), current.meta
        )
        current.rows_out = merged.inserted + merged.updated
    write_rejects(ctx.lake, rejects, current)
    return run_result(
        current,
        rejects=len(rejects),
        tokens_fetched=len(todo),
        tokens_skipped=len(tokens) - len(todo),
        wallets=len({r["wallet_address"] for r in rows}),
    )
