"""`st runs`: the run ledger."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, LimitOption, app_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(help="The run ledger: every stage run and how it ended.", no_args_is_help=True)

LIST_COLUMNS = [
    "run_id",
    "stage",
    "status",
    "started_at",
    "duration_seconds",
    "rows_in",
    "rows_out",
    "error",
]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Option("--stage", help="Only this stage.")] = None,
    limit: LimitOption = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List recent runs, newest first, those still running included.

    Example: st runs list --stage silver.pnl --limit 5
    """
    from smarttrader_cli.ops.ledger import Ledger

    app = app_context(ctx)
    rows = Ledger(app.lake, app.config.runtime.state_dir).runs(limit=limit, stage=stage)
    emit(rows, fmt, LIST_COLUMNS, title="runs")


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id from `st runs list`.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show one run in full.

    Example: st runs show 20261125T220501Z-3fa2c1
    """
    from smarttrader_cli.errors import UsageError
    from smarttrader_cli.ops.ledger import Ledger

    app = app_context(ctx)
    row = Ledger(app.lake, app.config.runtime.state_dir).get(run_id)
    if row is None:
        raise UsageError(f"no run {run_id!r} in ops.runs")
    if fmt is OutputFormat.table:
        emit(
            [{"field": k, "value": v} for k, v in row.items()],
            fmt,
            ["field", "value"],
            title=run_id,
        )
    else:
        emit([row], fmt)
