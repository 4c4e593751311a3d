"""`st bronze tokens`: the BirdEye token list with the configured filters, one snapshot."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import TOKEN_METRICS
from smarttrader_cli.stages.bronze_common import arrow_table, birdeye, now_seconds, write_rejects
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Fetched
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze")


@stage(
    "bronze.tokens",
    writes=TOKEN_METRICS.name,
    command="st bronze tokens",
    prepare=lambda ctx: {"limit": ctx.config.tokens.limit},
)
def run(ctx: StageContext, current: StageRun) -> StageResult:
    """Token list with the configured filters → bronze.token_metrics (one snapshot)."""
    cfg = ctx.config
    snapshot = now_seconds()

    async def fetch() -> Fetched[Any]:
        async with birdeye(ctx, current) as client:
            return await client.token_list(cfg.tokens)

    fetched = asyncio.run(fetch())
    rows = [
        {**asdict(r), "snapshot_at": snapshot, "run_id": current.run_id} for r in fetched.records
    ]
    current.rows_in = fetched.items
    if rows:
        merged = ctx.lake.merge(
            TOKEN_METRICS, arrow_table(TOKEN_METRICS.schema, rows), current.meta
        )
        current.rows_out = merged.inserted + merged.updated
    else:
        log.warning("no token passed the filters in `tokens`; nothing written")
    write_rejects(ctx.lake, fetched.rejects, current)
    return run_result(
        current,
        rejects=len(fetched.rejects),
        snapshot_at=snapshot.isoformat(),
        tokens=len(rows),
    )
