"""Bronze stages: BirdEye token list, whale holders and wallet trades into Delta tables.

State is derived from the tables: the latest token snapshot, when each token's
holders were last fetched, each wallet's watermark = max(block_unix_time), and when
each wallet was last fetched (bronze.wallet_fetches), which orders the wallets so a
capped run reaches every wallet in turn, including those that never traded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import ApiError, ApiRefusedError, StageError
from smarttrader_cli.lake.tables import (
    API_REJECTS,
    TOKEN_METRICS,
    WALLET_FETCHES,
    WALLET_TRADES,
    WHALE_HOLDERS,
)
from smarttrader_cli.ops.runs import StageRun, stage_run
from smarttrader_cli.sources.records import TradeRecord

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.context import AppContext
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.sources.birdeye import BirdeyeClient, Fetched, Reject

log = logging.getLogger("st.bronze")
# This many wallets failing one after another is an outage: stop instead of trying the rest.
OUTAGE_AFTER_FAILED_WALLETS = 3


@dataclass
class StageSummary:
    """What a bronze stage did, for the CLI to print."""

    stage: str
    run_id: str
    rows_in: int = 0
    rows_out: int = 0
    rejects: int = 0
    details: dict[str, Any] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@asynccontextmanager
async def birdeye(app: AppContext, run: StageRun) -> AsyncIterator[BirdeyeClient]:
    """A BirdEye client for one stage run; its request counts go to the run's ledger row."""
    from smarttrader_cli.sources.birdeye import BirdeyeClient

    client = BirdeyeClient(app.config.birdeye, app.loaded.secrets.birdeye_api_key)
    try:
        async with client:
            yield client
    finally:
        stats = client.stats
        run.count_api(stats.requests, stats.retries, stats.rate_limited)


def _table(spec_schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
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
        API_REJECTS, _table(API_REJECTS.schema, rows), run.meta, update_existing=False
    )
    if result.inserted:
        log.warning("%d malformed records kept in %s", result.inserted, API_REJECTS.name)
    return result.inserted


def reject_id(reject: Reject) -> str:
    """The same record from the same endpoint is the same reject, whatever the page."""
    return hashlib.sha256(f"{reject.endpoint}\n{reject.raw}".encode()).hexdigest()[:32]


# --- st bronze tokens ---------------------------------------------------------------


def run_tokens(app: AppContext) -> StageSummary:
    """Token list with the configured filters → bronze.token_metrics (one snapshot)."""
    from dataclasses import asdict

    cfg = app.config
    with stage_run(app, "bronze.tokens", {"limit": cfg.tokens.limit}) as run:
        snapshot = _now()

        async def fetch() -> Fetched[Any]:
            async with birdeye(app, run) as client:
                return await client.token_list(cfg.tokens)

        fetched = asyncio.run(fetch())
        rows = [
            {**asdict(r), "snapshot_at": snapshot, "run_id": run.run_id} for r in fetched.records
        ]
        run.rows_in = fetched.items
        if rows:
            result = app.lake.merge(TOKEN_METRICS, _table(TOKEN_METRICS.schema, rows), run.meta)
            run.rows_out = result.inserted + result.updated
        else:
            log.warning("no token passed the filters in `tokens`; nothing written")
        write_rejects(app.lake, fetched.rejects, run)
        return StageSummary(
            run.stage,
            run.run_id,
            run.rows_in,
            run.rows_out,
            len(fetched.rejects),
            {"snapshot_at": snapshot.isoformat(), "tokens": len(rows)},
        )


# --- st bronze whales ---------------------------------------------------------------


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


def run_whales(app: AppContext) -> StageSummary:
    """Top holders of the latest snapshot's tokens → bronze.whale_holders."""
    cfg = app.config.whales
    with stage_run(app, "bronze.whales", {"top_holders": cfg.top_holders}) as run:
        snapshot = _now()
        tokens = latest_tokens(app.lake, cfg.max_tokens)
        if not tokens:
            log.warning("bronze.token_metrics is empty: run `st bronze tokens` first")
        fresh = recently_fetched(app.lake, snapshot - timedelta(hours=cfg.refetch_after_hours))
        todo = [t for t in tokens if t["token_address"] not in fresh]
        log.info("holders of %d tokens to fetch (%d fetched recently)", len(todo), len(fresh))

        async def fetch() -> list[Fetched[Any]]:
            async with birdeye(app, run) as client:
                jobs = [client.token_holders(t["token_address"], cfg.top_holders) for t in todo]
                return list(await asyncio.gather(*jobs))

        results = asyncio.run(fetch()) if todo else []
        rows, rejects = [], []
        for token, fetched in zip(todo, results, strict=True):
            run.rows_in += fetched.items
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
                        "run_id": run.run_id,
                    }
                )
        if rows:
            result = app.lake.merge(WHALE_HOLDERS, _table(WHALE_HOLDERS.schema, rows), run.meta)
            run.rows_out = result.inserted + result.updated
        write_rejects(app.lake, rejects, run)
        wallets = len({r["wallet_address"] for r in rows})
        return StageSummary(
            run.stage,
            run.run_id,
            run.rows_in,
            run.rows_out,
            len(rejects),
            {
                "tokens_fetched": len(todo),
                "tokens_skipped": len(tokens) - len(todo),
                "wallets": wallets,
            },
        )


# --- st bronze trades ---------------------------------------------------------------


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


def plan_wallets(
    app: AppContext,
    wallets: list[str] | None,
    since: int | None,
    until: int | None,
    full_refresh: bool,
) -> list[WalletPlan]:
    """Which wallets to fetch and from when: never-fetched first, then least recently fetched.

    Each wallet is fetched from its watermark (the newest trade bronze holds for it), or
    from the lookback when it has none; the order only decides who is in a capped run.
    """
    cfg = app.config.trades
    now = int(datetime.now(UTC).timestamp())
    lookback = now - cfg.lookback_days * 86_400
    marks = {} if full_refresh else watermarks(app.lake)
    explicit = bool(wallets)
    candidates = list(dict.fromkeys(wallets)) if wallets else whale_wallets(app.lake)
    if not explicit:
        fetched = last_fetched(app.lake)
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


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


class _TradeWriter:
    """Commits completed wallets in batches: one merge commit per batch."""

    def __init__(self, app: AppContext, run: StageRun, full_refresh: bool) -> None:
        self.app, self.run, self.full_refresh = app, run, full_refresh
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
        lake, run = self.app.lake, self.run
        records = [r for _, f in batch for r in f.records]
        delete = None
        if self.full_refresh:  # the fetched window replaces what the table had for it
            clauses = []
            for plan, _ in batch:
                clause = f"(t.wallet_address = {_sql_str(plan.wallet)} AND t.block_unix_time > {plan.after}"
                if plan.before is not None:
                    clause += f" AND t.block_unix_time < {plan.before}"
                clauses.append(clause + ")")
            delete = " OR ".join(clauses)
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


async def _fetch_trades(
    app: AppContext, plans: list[WalletPlan], writer: _TradeWriter, progress: Any
) -> None:
    cfg = app.config
    queue: asyncio.Queue[WalletPlan] = asyncio.Queue()
    for plan in plans:
        queue.put_nowait(plan)
    results: asyncio.Queue[tuple[WalletPlan, Any]] = asyncio.Queue()

    async with birdeye(app, writer.run) as client:

        async def worker() -> None:
            while True:
                try:
                    plan = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    fetched = await client.wallet_trades(
                        plan.wallet, plan.after, plan.before, cfg.trades.max_trades_per_wallet
                    )
                except ApiRefusedError as exc:  # the key or plan: every wallet would fail
                    await results.put((plan, exc))
                    return
                except ApiError as exc:  # this wallet only: the next run fetches it first
                    await results.put((plan, exc))
                    continue
                await results.put((plan, fetched))

        workers = [
            asyncio.create_task(worker()) for _ in range(max(1, cfg.birdeye.max_concurrency))
        ]
        failure: BaseException | None = None
        in_a_row = 0  # wallets failed one after another
        try:
            for _ in range(len(plans)):
                plan, outcome = await results.get()
                if isinstance(outcome, ApiRefusedError):
                    failure = outcome
                    break
                if isinstance(outcome, BaseException):
                    writer.failed.append((plan.wallet, str(outcome)))
                    log.warning("wallet %s not fetched this run: %s", plan.wallet, outcome)
                    progress(plan.wallet)
                    in_a_row += 1
                    if in_a_row >= OUTAGE_AFTER_FAILED_WALLETS:  # the API is down, not a wallet
                        failure = outcome
                        break
                    continue
                in_a_row = 0
                if outcome.capped:
                    log.warning(
                        "wallet %s has more than %d trades in its window; kept the newest "
                        "(backfill older ones with --wallet and --until)",
                        plan.wallet,
                        cfg.trades.max_trades_per_wallet,
                    )
                writer.run.rows_in += outcome.items
                writer.add(plan, outcome)
                progress(plan.wallet)
                if len(writer.pending) >= max(1, cfg.trades.commit_every_wallets):
                    await asyncio.to_thread(writer.flush)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            # whatever happened, wallets that completed are kept: the next run resumes
            await asyncio.to_thread(writer.flush)
        if failure is not None:
            raise failure


def run_trades(
    app: AppContext,
    wallets: list[str] | None = None,
    since: int | None = None,
    until: int | None = None,
    full_refresh: bool = False,
) -> StageSummary:
    """Swap history of whale wallets from their watermarks → bronze.wallet_trades."""
    args = {"wallets": wallets or [], "since": since, "until": until, "full_refresh": full_refresh}
    with stage_run(app, "bronze.trades", args) as run:
        plans = plan_wallets(app, wallets, since, until, full_refresh)
        if not plans:
            log.warning("no wallets to fetch: run `st bronze whales` first (or pass --wallet)")
        writer = _TradeWriter(app, run, full_refresh)
        with _progress(app, len(plans)) as advance:
            if plans:
                asyncio.run(_fetch_trades(app, plans, writer, advance))
        if writer.failed:
            # The others are committed; the failed ones come first in the next run.
            wallet, why = writer.failed[0]
            raise StageError(
                f"{len(writer.failed)} of {len(plans)} wallets could not be fetched "
                f"({writer.committed_wallets} committed; first: {wallet}: {why})"
            )
        return StageSummary(
            run.stage,
            run.run_id,
            run.rows_in,
            run.rows_out,
            writer.rejects,
            {
                "wallets": len(plans),
                "wallets_committed": writer.committed_wallets,
            },
        )


class _progress:
    """A rich progress bar on a terminal, periodic log lines otherwise."""

    def __init__(self, app: AppContext, total: int) -> None:
        self.total, self.done = total, 0
        self.step = max(1, total // 10)
        self.bar: Any = None
        if total and sys.stderr.isatty() and not app.quiet and app.log_format == "text":
            from rich.progress import Progress

            self.bar = Progress(transient=True)

    def __enter__(self) -> Any:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("wallets", total=self.total)
        return self.advance

    def advance(self, wallet: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1)
        elif self.done % self.step == 0 or self.done == self.total:
            log.info("wallets fetched: %d/%d", self.done, self.total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
