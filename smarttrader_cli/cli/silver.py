"""`st silver`: commands are added as their stage lands."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, app_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(help="silver commands.", no_args_is_help=True)


@app.command("webhooks")
def webhooks(
    ctx: typer.Context,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Re-parse every bronze webhook event.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Parse bronze webhook events into swap legs → silver.webhook_swaps (incremental).

    Example: st silver webhooks
    """
    from smarttrader_cli.stages.silver_webhooks import run_silver_webhooks

    result = run_silver_webhooks(app_context(ctx), full_refresh)
    row = {
        "events": result.events,
        "legs": result.legs,
        "inserted": result.inserted,
        "updated": result.updated,
        "watermark": result.watermark.isoformat() if result.watermark else None,
    }
    emit([row], fmt, list(row), title="silver.webhook_swaps")
