"""Alert stages: evaluate the rules over new smart buys (`st alerts run`) and deliver the
outbox (`st alerts deliver`)."""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.alerts.delivery import DELIVERY_LOCK
from smarttrader_cli.alerts.safety import BLOCKED, PASSED, UNKNOWN
from smarttrader_cli.lake.tables import ALERTS, WEBHOOK_SWAPS
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.alerts")

RULES_STAGE = "alerts.run"


# Its stage lock is the delivery lock: one deliverer at a time, whoever it is.
@stage(DELIVERY_LOCK, writes=ALERTS.name, command="st alerts deliver")
def deliver(ctx: StageContext, current: StageRun, wait_seconds: float = 0.0) -> StageResult:
    """Send the outbox's due alerts through the configured channels; with `wait_seconds`,
    keep sending what falls due (retries) for that long. Then expire rows sent longer ago
    than alerts.retention_days."""
    from smarttrader_cli.alerts.delivery import Deliverer
    from smarttrader_cli.alerts.outbox import expire

    with Deliverer(ctx.lake, ctx.config.alerts, ctx.secrets) as deliverer:
        report = deliverer.deliver(current.meta, wait_seconds)
    expired = expire(ctx.lake, ctx.config.alerts.retention_days, current.meta)
    current.rows_in = report.sent + report.retried + report.dead
    current.rows_out = report.sent
    channels = ",".join(ctx.config.alerts.channels)
    return run_result(current, (), channels=channels, **report.as_dict(), expired=expired)


def _run_args(ctx: StageContext, now: datetime | None = None) -> dict[str, Any]:
    return {"now": (now or datetime.now(UTC)).isoformat()}


@stage(RULES_STAGE, writes=ALERTS.name, command="st alerts run", prepare=_run_args)
def run(ctx: StageContext, current: StageRun, now: datetime | None = None) -> StageResult:
    """Raise the alert rules' alerts over the smart buys silver.webhook_swaps gained since the
    last run (one outbox commit, with the cursor), then deliver what is due.

    Delivery is left to the deliverer holding the lock when there is one (`st follow`).
    """
    from smarttrader_cli.alerts.delivery import Deliverer, delivery_lock
    from smarttrader_cli.alerts.evaluate import LEG_COLUMNS, evaluate_and_deliver, legs_since
    from smarttrader_cli.alerts.safety import SafetyGate
    from smarttrader_cli.errors import LockHeldError
    from smarttrader_cli.lake.changes import since_cursor
    from smarttrader_cli.lake.readers import require

    config, lake = ctx.config, ctx.lake
    at = datetime.fromisoformat(current.args["now"])
    require(lake, WEBHOOK_SWAPS, "run `st silver webhooks` first")
    new = since_cursor(lake, WEBHOOK_SWAPS, lake.table(WEBHOOK_SWAPS), RULES_STAGE, ALERTS)
    if new.dataset is None:
        lookback = config.alerts.rules.lookback_hours
        log.info("reading the last %d h of buys: %s", lookback, new.why)
        legs = legs_since(lake, at - timedelta(hours=lookback))
    else:
        legs = new.dataset.to_table(columns=LEG_COLUMNS)
    with ExitStack() as held:
        deliverer = None
        if config.alerts.channels:
            try:
                held.enter_context(delivery_lock(config.runtime.state_dir, current.run_id))
                deliverer = held.enter_context(Deliverer(lake, config.alerts, ctx.secrets))
            except LockHeldError as exc:
                log.info("delivery left to the running deliverer: %s", exc)
        gate = SafetyGate(lake, config, ctx.secrets.birdeye_api_key)
        done = evaluate_and_deliver(
            lake, config, legs.to_pylist(), current.meta, deliverer, now=at, cursor=new.cursor,
            gate=gate,
        )  # fmt: skip
    current.rows_in, current.rows_out = legs.num_rows, done.queued
    if gate.stats.requests:
        current.count_api(gate.stats.requests, gate.stats.retries, gate.stats.rate_limited)
    delivered = done.delivery.as_dict() if done.delivery else {}
    verdicts = Counter(a.safety.status for a in done.alerts if a.safety is not None)
    return run_result(
        current, (), buys=len(done.buys), alerts=len(done.alerts), queued=done.queued,
        **{f"safety_{s}": verdicts[s] for s in (PASSED, BLOCKED, UNKNOWN)}, **delivered,
    )  # fmt: skip
