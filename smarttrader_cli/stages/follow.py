"""`st follow` as a stage: one ledger row for the whole run, under the `follow` lock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.follow.service import FollowLimits
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

STAGE = "follow"


def _args(
    ctx: StageContext, limits: FollowLimits | None = None, state: FollowState | None = None
) -> dict[str, Any]:
    return {
        "max_seconds": limits.max_seconds if limits else None,
        "idle_seconds": limits.idle_seconds if limits else None,
        "backend": ctx.config.stream.backend,
    }


@stage(STAGE, writes=WEBHOOK_EVENTS.name, command="st follow", prepare=_args)
def run(
    ctx: StageContext,
    current: StageRun,
    limits: FollowLimits | None = None,
    state: FollowState | None = None,
) -> StageResult:
    """Follow the stream until `limits.stop` is set (a signal) or a limit is hit; `state`
    is what the caller's view reads while it runs."""
    from smarttrader_cli.follow.service import Follower, FollowLimits
    from smarttrader_cli.follow.state import FollowState

    state = state or FollowState(ctx.config.follow.view_rows)
    done = Follower(ctx, current, state).run(limits or FollowLimits())
    current.rows_in, current.rows_out = done.messages, done.events
    return run_result(
        current,
        messages=done.messages,
        events_written=done.events,
        commits=done.commits,
        recovered_events=done.recovered_events,
        alerts_raised=done.alerts_raised,
        alerts_queued=done.alerts_queued,
        alerts_sent=done.alerts_sent,
        seconds=round(done.seconds, 2),
    )
