"""`st silver`: bronze tables into cleaned, joined silver tables."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(
    help="Silver stages: webhook events into swap legs, wallet trades into FIFO PnL.",
    no_args_is_help=True,
)
# What each command prints of its result, in order.
WEBHOOKS_COLUMNS = ("events", "legs", "inserted", "updated", "repriced", "bronze_version")
PNL_COLUMNS = (
    "run_id",
    "engine",
    "mode",
    "wallets",
    "repriced_wallets",
    "rows",
    "legs",
    "unpriced_legs",
    "rejected_trades",
    "duplicate_trades",
    "seconds",
)


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
    refuse_if_running(ctx, "silver.webhooks")
    from smarttrader_cli.stages import silver_webhooks

    result = silver_webhooks.run(stage_context(ctx), full_refresh=full_refresh)
    emit([result.as_row()], fmt, WEBHOOKS_COLUMNS, title="silver.webhook_swaps")


def _engine_choice(value: str | None) -> str | None:
    """--engine checked against the engines config/schema.py declares."""
    from typing import get_args

    from smarttrader_cli.config.schema import Engine

    if value is None or value.lower() in get_args(Engine):
        return value
    raise typer.BadParameter(f"unknown engine {value!r}: choose {' or '.join(get_args(Engine))}")


@app.command("pnl")
def pnl(
    ctx: typer.Context,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            "-e",
            help="duckdb or spark; default: `engine` from the config.",
            callback=_engine_choice,
        ),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Recompute every wallet and overwrite the table.")
    ] = False,
    wallet: Annotated[
        list[str] | None,
        typer.Option("--wallet", "-w", help="Recompute just this wallet (repeatable)."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """FIFO PnL per wallet and token plus one ALL_TOKENS row per wallet → silver.wallet_pnl.

    Incremental by default: only wallets with new trades (or re-priced open positions) are
    recomputed. Definitions: docs/pnl.md.

    Example: st silver pnl --engine duckdb --wallet 7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU
    """
    refuse_if_running(ctx, "silver.pnl")
    from smarttrader_cli.stages import silver_pnl

    result = silver_pnl.run(
        stage_context(ctx), engine=engine, full_refresh=full_refresh, wallets=wallet or ()
    )
    emit([result.as_row()], fmt, PNL_COLUMNS, title="silver.wallet_pnl")
