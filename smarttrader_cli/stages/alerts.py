"""Alert stages: deliver the outbox (`st alerts deliver`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smarttrader_cli.alerts.delivery import DELIVERY_LOCK
from smarttrader_cli.lake.tables import ALERTS
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext


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
