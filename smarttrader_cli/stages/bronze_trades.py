"""`st bronze trades`: followed wallets' swaps from each wallet's watermark.

Followed wallets: every holder in bronze.whale_holders, plus, for each discovery source
that is on (`discovery.top_traders`, `discovery.gainers`), every wallet bronze.wallet_sources
holds from it.

State is derived from the tables: each wallet's watermark = max(block_unix_time), and
when each wallet was last fetched (bronze.wallet_fetches), which orders the wallets so
a capped run reaches every wallet in turn, including those that never traded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.sql import between, quote
from smarttrader_cli.lake.tables import (
    WALLET_FETCHES,
    WALLET_SOURCES,
    WALLET_TRADES,
    WHALE_HOLDERS,
)
from smarttrader_cli.sources.records import GAINERS_SOURCE, TOP_TRADERS_SOURCE, TradeRecord
from smarttrader_cli.stages.bronze_common import write_rejects
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Fetched
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze")


@dataclass
class WalletPlan:
    """One wallet to fetch and its time window (after < t < before)."""

    wallet: str
    after: int
    before: int | None


def watermarks(lake: Lake) -> dict[str, int]:
    """max(block_unix_time) per wallet in bronze.wallet_trades."""
    if not lake.exists(WALLET_TRADES):
        return {}
    from smarttrader_cli.lake.query import connect

    con = connect(lake)
    try:
        sql = (
            "SELECT wallet_address, max(block_unix_time) FROM bronze.wallet_trades "
            "GROUP BY wallet_address"
        )
        return {w: int(t) for w, t in con.execute(sql).fetchall()}
    finally:
        con.close()


def last_fetched(lake: Lake) -> dict[str, datetime]:
    """When each wallet's history was last fetched (bronze.wallet_fetches)."""
    if not lake.exists(WALLET_FETCHES):
        return {}
    table = lake.read(WALLET_FETCHES, columns=["wallet_address", "fetched_at"])
    return dict(
        zip(
            table["wallet_address"].to_pylist(),
            table["fetched_at"].to_pylist(),
            strict=True,
        )
    )


def whale_wallets(lake: Lake) -> list[str]:
    """Every wallet seen in bronze.whale_holders."""
    import pyarrow.compute as pc

    table = lake.read(WHALE_HOLDERS, columns=["wallet_address"])
    return sorted(pc.unique(table["wallet_address"]).to_pylist())


def discovered_wallets(lake: Lake, sources: list[str]) -> list[str]:
    """Every wallet bronze.wallet_sources holds from one of `sources` (top_traders, gainers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not sources:
        return []
    table = lake.read(WALLET_SOURCES, columns=["wallet_address", "source"])
    kept = table.filter(pc.is_in(table["source"], value_set=pa.array(sources)))
    return sorted(pc.unique(kept["wallet_address"]).to_pylist())


def followed_wallets(ctx: StageContext) -> list[str]:
    """The holders, plus the wallets of every discovery source that is on (deduplicated)."""
    found = ctx.config.discovery
    sources = [
        name
        for name, on in ((TOP_TRADERS_SOURCE, found.top_traders), (GAINERS_SOURCE, found.gainers))
        if on
    ]
    holders = whale_wallets(ctx.lake)
    return sorted({*holders, *discovered_wallets(ctx.lake, sources)}) if sources else holders


def plan_wallets(
    ctx: StageContext,
    wallets: list[str] | None,
    since: int | None,
    until: int | None,
    full_refresh: bool,
) -> list[WalletPlan]:
    """Which wallets to fetch and from when: never-fetched first, then least recently fetched.

    Each wallet is fetched from its watermark (the newest trade bronze holds for it), or
    from the lookback when it has none; the order only decides who is in a capped run.
    """
    cfg = ctx.config.trades
    now = int(datetime.now(UTC).timestamp())
    lookback = now - cfg.lookback_days * 86_400
    marks = {} if full_refresh else watermarks(ctx.lake)
    explicit = bool(wallets)
    candidates = list(dict.fromkeys(wallets)) if wallets else followed_wallets(ctx)
    if not explicit:
        fetched = last_fetched(ctx.lake)
        never = datetime.min.replace(tzinfo=UTC)
        candidates.sort(key=lambda w: (w in fetched, fetched.get(w, never), w))
        candidates = candidates[: cfg.max_wallets_per_run]
    plans = []
    for w in candidates:
        if since is not None:
            after = since - 1
        elif w in marks:
            after = marks[w] - 1  # re-read the watermark second: trades sharing it are merged
        else:
            after = lookback
        plans.append(WalletPlan(w, after, until))
    return plans


_TRADE_FIELDS = [f.name for f in fields(TradeRecord)]


def _trade_rows(records: list[TradeRecord], fetched_at: datetime, run_id: str) -> pa.Table:
    import pyarrow as pa

    schema = WALLET_TRADES.schema
    data = {
        n: pa.array([getattr(r, n) for r in records], schema.field(n).type) for n in _TRADE_FIELDS
    }
    data["fetched_at"] = pa.array([fetched_at] * len(records), schema.field("fetched_at").type)
    data["run_id"] = pa.array([run_id] * len(records), pa.string())
    return pa.table(data)


def _fetch_rows(batch: list[tuple[WalletPlan, Fetched[TradeRecord]]], run_id: str) -> pa.Table:
    import pyarrow as pa

    fetched_at = datetime.now(UTC)
    rows = [
        {
            "wallet_address": plan.wallet,
            "fetched_at": fetched_at,
            "window_after": plan.after,
            "window_before": plan.before,
            "trades": len(fetched.records),
            "capped": fetched.capped,
            "run_id": run_id,
        }
        for plan, fetched in batch
    ]
    return pa.Table.from_pylist(rows, WALLET_FETCHES.schema)


class TradeWriter:
    """Commits completed wallets in batches: one merge commit per batch."""

    def __init__(self, lake: Lake, run: StageRun, full_refresh: bool) -> None:
        self.lake, self.run, self.full_refresh = lake, run, full_refresh
        self.pending: list[tuple[WalletPlan, Fetched[TradeRecord]]] = []
        self.committed_wallets = 0
        self.rejects = 0
        self.failed: list[tuple[str, str]] = []  # (wallet, why) of wallets not fetched

    def add(self, plan: WalletPlan, fetched: Fetched[TradeRecord]) -> None:
        self.pending.append((plan, fetched))

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        lake, run = self.lake, self.run
        records = [r for _, f in batch for r in f.records]
        delete = None
        if self.full_refresh:  # the fetched window replaces what the table had for it
            delete = " OR ".join(
                f"(t.wallet_address = {quote(plan.wallet)} AND "
                f"{between('t.block_unix_time', plan.after, plan.before)})"
                for plan, _ in batch
            )
        if records or delete:
            table = _trade_rows(records, datetime.now(UTC), run.run_id)
            result = lake.merge(
                WALLET_TRADES,
                table,
                run.meta,
                update_existing=self.full_refresh,
                delete_predicate=delete,
            )
            run.rows_out += result.inserted + result.updated
        # After the trades: a crash in between only means this batch is fetched again.
        lake.merge(WALLET_FETCHES, _fetch_rows(batch, run.run_id), run.meta)
        rejects = [r for _, f in batch for r in f.rejects]
        self.rejects += write_rejects(lake, rejects, run)
        self.committed_wallets += len(batch)
        log.info(
            "committed %d wallets (%d trades); %d wallets done",
            len(batch),
            len(records),
            self.committed_wallets,
        )


def _args(
    ctx: StageContext,
    wallets: list[str] | None = None,
    since: int | None = None,
    until: int | None = None,
    full_refresh: bool = False,
) -> dict[str, Any]:
    return {"wallets": wallets or [], "since": since, "until": until, "full_refresh": full_refresh}


@stage("bronze.trades", writes=WALLET_TRADES.name, command="st bronze trades", prepare=_args)
def run(
    ctx: StageContext,
    current: StageRun,
    wallets: list[str] | None = None,
    since: int | None = None,
    until: int | None = None,
    full_refresh: bool = False,
) -> StageResult:
    """Swap history of whale wallets from their watermarks → bronze.wallet_trades."""
    from smarttrader_cli.stages.trade_pool import fetch_trades

    plans = plan_wallets(ctx, wallets, since, until, full_refresh)
    if not plans:
        log.warning("no wallets to fetch: run `st bronze whales` first (or pass --wallet)")
    writer = TradeWriter(ctx.lake, current, full_refresh)
    ctx.progress.start(len(plans), "wallets fetched", log)
    try:
        if plans:
            asyncio.run(fetch_trades(ctx, plans, writer))
    finally:
        ctx.progress.done()
    if writer.failed:
        # The others are committed; the failed ones come first in the next run.
        wallet, why = writer.failed[0]
        raise StageError(
            f"{len(writer.failed)} of {len(plans)} wallets could not be fetched "
            f"({writer.committed_wallets} committed; first: {wallet}: {why})"
        )
    return run_result(
        current,
        rejects=writer.rejects,
        wallets=len(plans),
        wallets_committed=writer.committed_wallets,
    )
