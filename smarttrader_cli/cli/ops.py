"""`st ops`: housekeeping for unattended operation."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli import schedule
from smarttrader_cli.cli.options import FormatOption, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit
from smarttrader_cli.errors import EXIT_FAILED

app = typer.Typer(
    help="Housekeeping: disk usage, vacuum, compaction, old spool segments and logs.",
    no_args_is_help=True,
)
app.add_typer(schedule.app, name="schedule")


@app.command("cleanup")
def cleanup(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; change nothing.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Check disk usage, vacuum every Delta table, remove expired spool segments and logs.

    Exits 1 when a data directory's disk is still above ops.disk_critical_percent afterwards.

    Example: st ops cleanup --dry-run
    """
    refuse_if_running(ctx, "ops.cleanup")
    from smarttrader_cli.stages import cleanup as stage

    stage_ctx = stage_context(ctx)
    result = stage.preview(stage_ctx) if dry_run else stage.run(stage_ctx)
    title = "cleanup (dry run)" if dry_run else "cleanup"
    emit(result.records, fmt, ["kind", "target", "action", "detail"], title=title)
    if result.details["critical"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("compact")
def compact(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Compact the tables in ops.compact_tables, then checkpoint them and drop expired log.

    Also sets the lake's table properties (checkpoint interval, log and file retention)
    on every table that lacks them. Safe while a drain or stage runs.

    Example: st ops compact
    """
    refuse_if_running(ctx, "ops.compact")
    from smarttrader_cli.stages import compact as stage

    result = stage.run(stage_context(ctx))
    columns = ["table", "properties_set", "small_files", "files_removed", "files_added"]
    emit(result.records, fmt, [*columns, "checkpoint"], title="compact")
