"""`st ops`: housekeeping for unattended operation."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, app_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(
    help="Housekeeping: disk usage, vacuum, old spool segments and logs.", no_args_is_help=True
)


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
    from smarttrader_cli.ops.cleanup import run_cleanup
    from smarttrader_cli.ops.runs import stage_run

    app = app_context(ctx)
    if dry_run:
        report = run_cleanup(app.config, app.lake, dry_run=True)
    else:
        with stage_run(app, "ops.cleanup", {"dry_run": False}) as run:
            report = run_cleanup(app.config, app.lake, dry_run=False)
            run.rows_out = len(report.removed) + sum(v["files"] for v in report.vacuum)
    title = "cleanup (dry run)" if dry_run else "cleanup"
    emit(report.rows(), fmt, ["kind", "target", "action", "detail"], title=title)
    if report.critical:
        raise typer.Exit(1)
