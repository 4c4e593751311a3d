"""`st bronze`: BirdEye token list, whale holders and wallet trades into the lake."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

if TYPE_CHECKING:
    from smarttrader_cli.stages.contract import StageResult

app = typer.Typer(help="Bronze stages: raw BirdEye data into Delta tables.", no_args_is_help=True)


def _show(result: StageResult, fmt: OutputFormat) -> None:
    emit([result.as_row()], fmt, title=result.stage)


def parse_time(value: str | None, option: str) -> int | None:
    """Unix seconds from unix seconds, an ISO date or an ISO datetime (UTC if naive)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "expected unix seconds, YYYY-MM-DD or an ISO datetime", param_hint=option
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


@app.command("tokens")
def tokens(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Fetch the token list with the filters of `tokens:` into bronze.token_metrics.

    Example: st bronze tokens --format json
    """
    refuse_if_running(ctx, "bronze.tokens")
    from smarttrader_cli.stages import bronze_tokens

    _show(bronze_tokens.run(stage_context(ctx)), fmt)


@app.command("whales")
def whales(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Fetch top holders of the latest token snapshot into bronze.whale_holders.

    Tokens fetched within `whales.refetch_after_hours` are skipped. With
    `discovery.top_traders` / `discovery.gainers` on, also each token's top traders and
    BirdEye's top wallets by PnL into bronze.wallet_sources (lists fetched within
    `discovery.refetch_after_hours` skipped); `st bronze trades` follows them too.

    Example: st bronze whales
    """
    refuse_if_running(ctx, "bronze.whales")
    from smarttrader_cli.stages import bronze_whales

    _show(bronze_whales.run(stage_context(ctx)), fmt)


@app.command("prices")
def prices(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Fetch USD price history of `prices.assets` (SOL) into bronze.token_prices.

    Real-time swap legs against SOL are valued at SOL's price at the event's time;
    each run continues from the newest stored point (the first goes back
    `prices.lookback_hours`). Run it before `st silver webhooks`.

    Example: st bronze prices --format json
    """
    refuse_if_running(ctx, "bronze.prices")
    from smarttrader_cli.stages import prices as stage

    _show(stage.run(stage_context(ctx)), fmt)


@app.command("trades")
def trades(
    ctx: typer.Context,
    wallet: Annotated[
        list[str] | None,
        typer.Option(
            "--wallet", "-w", help="Only this wallet (repeatable); default: every followed wallet."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Fetch from this time (unix, YYYY-MM-DD or ISO), not the watermark."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Fetch trades before this time (backfills).")
    ] = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh", help="Ignore watermarks: refetch the lookback window and replace it."
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Fetch followed wallets' swaps since each watermark into bronze.wallet_trades.

    Followed: the holders in bronze.whale_holders, plus the discovered wallets in
    bronze.wallet_sources of each `discovery` source that is on.

    Completed wallets are committed every `trades.commit_every_wallets`; a failed run
    keeps them and the next run resumes.

    Example: st bronze trades --wallet 7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU --since 2025-01-01
    """
    from smarttrader_cli.errors import UsageError

    refuse_if_running(ctx, "bronze.trades")
    from smarttrader_cli.stages import bronze_trades

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError("--since must be before --until")
    wallets = [w.strip() for w in wallet or []]
    if any(not w for w in wallets):
        raise UsageError("--wallet must not be empty")
    result = bronze_trades.run(
        stage_context(ctx),
        wallets=wallets or None,
        since=start,
        until=end,
        full_refresh=full_refresh,
    )
    _show(result, fmt)
