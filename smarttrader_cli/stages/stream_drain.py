"""`st stream drain` as a stage: the configured stream backend into bronze.webhook_events."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stages.contract import StageResult, run_result, stage
from smarttrader_cli.stream.drain import Drainer, DrainLimits, DrainResult

if TYPE_CHECKING:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.stream.drain")


def _args(
    ctx: StageContext, limits: DrainLimits | None = None, reset_offsets: bool = False
) -> dict[str, Any]:
    limits = limits or DrainLimits()
    return {
        "max_messages": limits.max_messages,
        "max_seconds": limits.max_seconds,
        "follow": limits.follow,
        "backend": ctx.config.stream.backend,
        "reset_offsets": reset_offsets,
    }


@stage("stream.drain", writes=WEBHOOK_EVENTS.name, command="st stream drain", prepare=_args)
def run(
    ctx: StageContext,
    current: StageRun,
    limits: DrainLimits | None = None,
    reset_offsets: bool = False,
) -> StageResult:
    """Drain the configured backend into the lake until caught up or a limit is hit
    (after recording new offsets at the stream's start, with `reset_offsets`)."""
    from smarttrader_cli.lake.layout import repartition_from_writer
    from smarttrader_cli.stream.backend import open_consumer

    def progress(r: DrainResult) -> None:
        current.rows_in, current.rows_out = r.messages, r.events_written
        log.debug("committed: %d messages, %d events so far", r.messages, r.events_written)

    config = ctx.config
    # a table from before the day partitions is rewritten into them, offsets kept (once)
    repartition_from_writer(ctx.lake, WEBHOOK_EVENTS, current.meta, config.runtime.state_dir)
    drainer = Drainer(
        ctx.lake,
        open_consumer(config),
        config.stream,
        current.meta,
        progress,
        state_dir=Path(config.runtime.state_dir),
    )
    if reset_offsets:
        drainer.reset_offsets()
    drained = drainer.run(limits or DrainLimits())
    current.rows_in, current.rows_out = drained.messages, drained.events_written
    return run_result(
        current,
        messages=drained.messages,
        events_written=drained.events_written,
        duplicates=drained.duplicates,
        dead_letters=drained.dead_letters,
        commits=drained.commits,
        conflicts=drained.conflicts,
        caught_up=drained.caught_up,
        lag=sum(drained.lag.values()),
        seconds=round(drained.seconds, 2),
        events_per_second=round(drained.messages / drained.seconds) if drained.seconds else 0,
    )
