"""`st ops cleanup` as a stage: disk levels, Delta vacuum, expired segments and logs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarttrader_cli.stages.contract import StageResult, stage

if TYPE_CHECKING:
    from smarttrader_cli.ops.cleanup import CleanupReport
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

STAGE = "ops.cleanup"


def _result(report: CleanupReport, run_id: str, rows_out: int) -> StageResult:
    details: dict[str, Any] = {"dry_run": report.dry_run, "critical": report.critical}
    return StageResult(STAGE, run_id, 0, rows_out, details, report.rows())


def preview(ctx: StageContext) -> StageResult:
    """What `run` would remove; nothing changes and no run is recorded.

    The result's records are the findings (kind, target, action, detail).
    """
    from smarttrader_cli.ops.cleanup import run_cleanup

    return _result(run_cleanup(ctx.config, ctx.lake, dry_run=True), "", 0)


@stage(
    STAGE,
    writes="vacuumed tables, removed segments and logs",
    command="st ops cleanup",
    prepare=lambda ctx: {"dry_run": False},
)
def run(ctx: StageContext, current: StageRun) -> StageResult:
    """Vacuum every table and remove expired segments and logs; `critical` in the details
    when a data directory's disk is still above ops.disk_critical_percent afterwards."""
    from smarttrader_cli.ops.cleanup import run_cleanup

    report = run_cleanup(ctx.config, ctx.lake, dry_run=False)
    current.rows_out = len(report.removed) + sum(v["files"] for v in report.vacuum)
    return _result(report, current.run_id, current.rows_out)
