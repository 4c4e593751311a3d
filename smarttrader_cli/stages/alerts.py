"""Alert stages: evaluate the rules over new smart buys (`st alerts run`) and deliver the
outbox (`st alerts deliver`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.alerts.delivery import DELIVERY_LOCK, DeliveryReport
from smarttrader_cli.lake.tables import ALERTS, SMART_WALLETS, WEBHOOK_SWAPS
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.alerts.rules import RankedWallet
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.alerts")

RULES_STAGE = "alerts.run"
LEG_COLUMNS = ["signature", "wallet", "direction", "token_address", "value_usd", "event_time"]


# Its stage lock is the delivery lock: one deliverer at a time, whoever it is.
@stage(DELIVERY_LOCK, writes=ALERTS.name, command="st alerts deliver")
def deliver(ctx: StageContext, current: StageRun, wait_seconds: float = 0.0) -> StageResult:
    """Send the outbox's due alerts through the configured channels; with `wait_seconds`,
    keep sending what falls due (retries) for that long."""
    from smarttrader_cli.alerts.delivery import Deliverer

    with Deliverer(ctx.lake, ctx.config.alerts, ctx.secrets) as deliverer:
        report = deliverer.deliver(current.meta, wait_seconds)
    current.rows_in = report.sent + report.retried + report.dead
    current.rows_out = report.sent
    return run_result(
        current, (), channels=",".join(ctx.config.alerts.channels), **report.as_dict()
    )


def _run_args(ctx: StageContext, now: datetime | None = None) -> dict[str, Any]:
    return {"now": (now or datetime.now(UTC)).isoformat()}


@stage(RULES_STAGE, writes=ALERTS.name, command="st alerts run", prepare=_run_args)
def run(ctx: StageContext, current: StageRun, now: datetime | None = None) -> StageResult:
    """Raise the alert rules' alerts over the smart buys silver.webhook_swaps gained since the
    last run (one outbox commit, with the cursor), then deliver what is due.

    Delivery is left to the deliverer holding the lock when there is one (`st follow`).
    """
    from smarttrader_cli.alerts import rules
    from smarttrader_cli.alerts.outbox import enqueue
    from smarttrader_cli.lake.changes import since_cursor
    from smarttrader_cli.lake.readers import require

    config, lake = ctx.config, ctx.lake
    settings = config.alerts.rules
    at = datetime.fromisoformat(current.args["now"])
    require(lake, WEBHOOK_SWAPS, "run `st silver webhooks` first")
    snapshot = lake.table(WEBHOOK_SWAPS)
    new = since_cursor(lake, WEBHOOK_SWAPS, snapshot, RULES_STAGE, ALERTS)
    window = timedelta(minutes=settings.confluence.window_minutes)
    recent = at - timedelta(minutes=settings.max_age_minutes)
    if new.dataset is None:
        log.info("reading the last %d h of buys: %s", settings.lookback_hours, new.why)
        legs = _legs_since(snapshot, at - timedelta(hours=settings.lookback_hours))
    else:
        legs = new.dataset.to_table(columns=LEG_COLUMNS)
    ranked = _ranked(lake)
    quotes = [*config.pnl.quote_assets, *config.prices.stablecoins]
    fresh = rules.smart_buys(legs.to_pylist(), ranked, quotes, recent)
    alerts = rules.wallet_buy_alerts(fresh, settings.wallet_buy)
    if fresh and settings.confluence.enabled:
        # The buys that complete a set may need older ones, up to a window back.
        since = min(b.event_time for b in fresh) - window
        tokens = {b.token_address for b in fresh}
        context = [
            leg
            for leg in _legs_since(snapshot, since).to_pylist()
            if leg["token_address"] in tokens
        ]
        buys = rules.smart_buys(context, ranked, quotes, since)
        alerts += [
            a
            for a in rules.confluence_alerts(buys, settings.confluence)
            if a.event_time is not None and a.event_time >= recent
        ]
    channels = list(dict.fromkeys(config.alerts.channels))
    if alerts and not channels:
        log.warning("%d alerts matched but alerts.channels is empty: none queued", len(alerts))
    queued = enqueue(lake, alerts, channels, current.meta, cursor=new.cursor)
    report = _deliver(ctx, current) if queued or channels else None
    current.rows_in, current.rows_out = legs.num_rows, queued
    return run_result(
        current,
        (),
        buys=len(fresh),
        alerts=len(alerts),
        queued=queued,
        **(report.as_dict() if report else {}),
    )


def _legs_since(snapshot: Any, since: datetime) -> pa.Table:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from smarttrader_cli.lake.tables import TS

    dataset = snapshot.to_pyarrow_dataset()
    return dataset.to_table(
        columns=LEG_COLUMNS, filter=ds.field("event_time") >= pa.scalar(since, type=TS)
    )


def _ranked(lake: Lake) -> dict[str, RankedWallet]:
    """gold.smart_wallets' wallets with their tier and rank (none before `st gold rank`)."""
    from smarttrader_cli.alerts.rules import RankedWallet

    if not lake.exists(SMART_WALLETS):
        log.warning(
            "gold.smart_wallets is not written yet (run `st gold rank`): no wallet is ranked"
        )
        return {}
    rows = lake.read(SMART_WALLETS, columns=["wallet_address", "tier", "rank"]).to_pylist()
    return {r["wallet_address"]: RankedWallet(r["tier"], r["rank"]) for r in rows}


def _deliver(ctx: StageContext, current: StageRun) -> DeliveryReport | None:
    """Deliver what is due, unless another deliverer holds the lock (it will)."""
    from smarttrader_cli.alerts.delivery import Deliverer, delivery_lock
    from smarttrader_cli.errors import LockHeldError

    try:
        with (
            delivery_lock(ctx.config.runtime.state_dir, current.run_id),
            Deliverer(ctx.lake, ctx.config.alerts, ctx.secrets) as deliverer,
        ):
            return deliverer.deliver_due(current.meta)
    except LockHeldError as exc:
        log.info("delivery left to the running deliverer: %s", exc)
        return None
