"""`st doctor`: is this machine ready to run the pipeline?"""

from __future__ import annotations

import typer

from smarttrader_cli.cli.options import FormatOption
from smarttrader_cli.cli.output import OutputFormat, emit
from smarttrader_cli.errors import EXIT_FAILED


def doctor(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Check config, lake, broker, API keys, engines, disk and memory; exit 1 if any check fails.

    Warnings (a missing key for a loopback simulator, disk above the warning level)
    do not fail the run.

    Example: st doctor --format json
    """
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.ops.doctor import FAIL, OK, WARN, failed, run_checks

    app = ctx.find_root().obj
    config_path = app.config_path if isinstance(app, AppContext) else None
    results = run_checks(config_path)
    rows = [r.as_row() for r in results]
    if fmt is OutputFormat.table:
        colour = {OK: "green", WARN: "yellow", FAIL: "bold red"}
        for row in rows:
            style = colour.get(row["status"], "dim")
            row["status"] = f"[{style}]{row['status']}[/{style}]"
    emit(rows, fmt, ["check", "status", "detail"], title="st doctor")
    if failed(results):
        raise typer.Exit(EXIT_FAILED)
