"""The wallet-trades fetch pool: concurrent BirdEye fetches, committed in batches."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import ApiError, ApiRefusedError
from smarttrader_cli.stages.bronze_common import birdeye

if TYPE_CHECKING:
    from smarttrader_cli.stages.bronze_trades import TradeWriter, WalletPlan
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze")
# This many wallets failing one after another is an outage: stop instead of trying the rest.
OUTAGE_AFTER_FAILED_WALLETS = 3


async def fetch_trades(ctx: StageContext, plans: list[WalletPlan], writer: TradeWriter) -> None:
    """Fetch `plans` with `birdeye.max_concurrency` workers, committing through `writer`.

    A wallet that fails is noted and skipped; a refused key, or
    OUTAGE_AFTER_FAILED_WALLETS failures in a row, stops the pool. Completed wallets are
    committed whatever happens, so the next run resumes.
    """
    cfg = ctx.config
    queue: asyncio.Queue[WalletPlan] = asyncio.Queue()
    for plan in plans:
        queue.put_nowait(plan)
    results: asyncio.Queue[tuple[WalletPlan, Any]] = asyncio.Queue()

    async with birdeye(ctx, writer.run) as client:

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
                    ctx.progress.advance()
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
                ctx.progress.advance()
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
