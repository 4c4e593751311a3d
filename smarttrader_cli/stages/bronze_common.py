"""What the bronze stages share: the BirdEye client of a run, Arrow rows, kept rejects."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import API_REJECTS

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import BirdeyeClient, Reject
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze")


def now_seconds() -> datetime:
    """Now in UTC to the second: the snapshot time of a run."""
    return datetime.now(UTC).replace(microsecond=0)


@asynccontextmanager
async def birdeye(ctx: StageContext, run: StageRun) -> AsyncIterator[BirdeyeClient]:
    """A BirdEye client for one stage run; its request counts go to the run's ledger row."""
    from smarttrader_cli.sources.birdeye import BirdeyeClient

    client = BirdeyeClient(ctx.config.birdeye, ctx.secrets.birdeye_api_key)
    try:
        async with client:
            yield client
    finally:
        stats = client.stats
        run.count_api(stats.requests, stats.retries, stats.rate_limited)


def arrow_table(spec_schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    names = [n for n in spec_schema.names if rows and n in rows[0]]
    columns = {n: [r[n] for r in rows] for n in names}
    return pa.table({n: pa.array(v, spec_schema.field(n).type) for n, v in columns.items()})


def write_rejects(lake: Lake, rejects: list[Reject], run: StageRun) -> int:
    """Keep unparseable records with their reason and raw JSON in bronze.api_rejects.

    A record is kept once: fetching the same malformed item again (pages overlap, runs
    repeat) matches its `reject_id` and adds nothing. Returns the rows new to the table.
    """
    if not rejects:
        return 0
    now = datetime.now(UTC)
    rows = [
        {
            "rejected_at": now,
            "endpoint": r.endpoint,
            "request": r.request,
            "reason": r.reason,
            "raw": r.raw,
            "run_id": run.run_id,
            "reject_id": reject_id(r),
        }
        for r in rejects
    ]
    result = lake.merge(
        API_REJECTS, arrow_table(API_REJECTS.schema, rows), run.meta, update_existing=False
    )
    if result.inserted:
        log.warning("%d malformed records kept in %s", result.inserted, API_REJECTS.name)
    return result.inserted


def reject_id(reject: Reject) -> str:
    """The same record from the same endpoint is the same reject, whatever the page."""
    return hashlib.sha256(f"{reject.endpoint}\n{reject.raw}".encode()).hexdigest()[:32]
