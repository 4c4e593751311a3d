"""`st gold`: the smart-wallet ranking, smart-money flows and the HTML report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smarttrader_cli.cli.options import FormatOption, app_context, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(
    help="Gold layer: rank smart wallets, smart-money token flows, HTML report.",
    no_args_is_help=True,
)


@app.command("rank")
def rank(
    ctx: typer.Context,
    top: Annotated[
        int | None,
        typer.Option("--top", "-n", min=1, help="Rows to print (default: gold.top_n)."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window", "-w", help="Rank by this window of pnl.windows (default: gold.window)."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Flag the wallets seen, rank the rest into gold.smart_wallets and print the top N.

    Runs `dbt build` (models plus their tests) in-process with every threshold from the
    config as a dbt var; a failing dbt test fails the stage with dbt's message. Flagged
    wallets (gold.wallet_flags) are left out by default; `st gold explain WALLET` says why.

    Example: st gold rank --window 7d --top 20 --format json
    """
    refuse_if_running(ctx, "gold.rank")
    from smarttrader_cli.stages.gold import RANK_COLUMNS
    from smarttrader_cli.stages.gold import rank as stage

    stage_ctx = stage_context(ctx)
    result = stage(stage_ctx, window=window)
    if result.details["message"]:
        sys.stderr.write(f"st: {result.details['message']}\n")
    limit = top or stage_ctx.config.gold.top_n
    ranked = result.details["ranked"]
    title = f"top {min(limit, ranked)} of {ranked} smart wallets"
    if result.details["window"] != "all":
        title += f" by {result.details['window']} PnL"
    if result.details["excluded"]:
        title += f" ({result.details['excluded']} flagged wallets excluded: st gold explain WALLET)"
    if fmt is OutputFormat.table:
        print_ranking(result.records[:limit], title)
    else:
        emit(result.records[:limit], fmt, RANK_COLUMNS, title=title)


def print_ranking(rows: list[dict[str, Any]], title: str) -> None:
    """The ranking as a rich table whose wallet addresses never wrap (they get copied)."""
    _print_table(
        title,
        [("rank", "right"), ("wallet", "left"), ("tier", "left"), ("score", "right"),
         ("total PnL $", "right"), ("ROI", "right"), ("win rate", "right"), ("trades", "right")],
        [
            [str(r["rank"]), r["wallet_address"], r["tier"], f"{r['score']:.3f}",
             f"{r['total_pnl']:,.0f}", _pct(r["roi"]), _pct(r["win_rate"]), str(r["trade_count"])]
            for r in rows
        ],
    )  # fmt: skip


def print_flows(rows: list[dict[str, Any]], title: str) -> None:
    """Token flows as a rich table whose token addresses never wrap."""
    _print_table(
        title,
        [("token", "left"), ("net flow $", "right"), ("bought $", "right"), ("sold $", "right"),
         ("buys", "right"), ("sells", "right"), ("buyers", "right"), ("sellers", "right"),
         ("last trade", "right")],
        [
            [r["token_address"], _usd(r["net_flow_usd"]), _usd(r["buy_volume_usd"]),
             _usd(r["sell_volume_usd"]), str(r["buy_count"]), str(r["sell_count"]),
             str(r["smart_buyers"]), str(r["smart_sellers"]),
             f"{r['last_trade_at']:%H:%M}" if r.get("last_trade_at") else ""]
            for r in rows
        ],
    )  # fmt: skip


def _print_table(title: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or captured: no reason to squeeze into 80 columns
        console = Console(width=140)
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _usd(value: float | None) -> str:
    """Whole dollars; `unknown` when some legs had no USD value (never shown as 0)."""
    return "unknown" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@app.command("explain")
def explain(
    ctx: typer.Context,
    wallet: Annotated[str, typer.Argument(help="The wallet address to explain.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print it as one JSON object.")] = False,
) -> None:
    """Print why a wallet is or is not ranked: the rule, its portfolio, windows and flags.

    Reads what the last `st gold rank` wrote (gold.smart_wallets, gold.wallet_flags) and
    silver; a wallet st never saw is an error (exit 2).

    Example: st gold explain 5tzFkiKscXHK5ZXCGbXZxdw7gTjjD1mBwuoFbhUvuAi9
    """
    import json

    from smarttrader_cli.report.explain import explain as explain_wallet
    from smarttrader_cli.report.explain import lines

    app_ctx = app_context(ctx)
    found = explain_wallet(app_ctx.lake, app_ctx.config, wallet.strip())
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), default=str) + "\n")
    else:
        sys.stdout.write("\n".join(lines(found)) + "\n")


@app.command("flows")
def flows(
    ctx: typer.Context,
    top: Annotated[
        int | None,
        typer.Option("--top", "-n", min=1, help="Tokens to print (default: flows.top_n)."),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Build smart-wallet token flows into gold.token_flows and print what smart money buys.

    Recomputes the windows of the last flows.lookback_hours from silver.webhook_swaps and
    prints tokens by net smart-wallet flow (USD) over that range, biggest buying first.

    Example: st gold flows --top 20
    """
    refuse_if_running(ctx, "gold.flows")
    from smarttrader_cli.stages.gold import FLOWS_COLUMNS
    from smarttrader_cli.stages.gold import flows as stage

    stage_ctx = stage_context(ctx)
    result = stage(stage_ctx)
    details = result.details
    if details["message"]:
        sys.stderr.write(f"st: {details['message']}\n")
    limit = top or stage_ctx.config.flows.top_n
    title = (
        f"smart money since {details['since']:%Y-%m-%d %H:%M} UTC ({details['windows']} windows)"
    )
    if fmt is OutputFormat.table:
        print_flows(result.records[:limit], title)
    else:
        emit(result.records[:limit], fmt, FLOWS_COLUMNS, title=title)


@app.command("report")
def report(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write.", dir_okay=False)
    ] = Path("report.html"),
    top: Annotated[
        int, typer.Option("--top", "-n", min=1, help="Wallets in the cumulative PnL chart.")
    ] = 10,
) -> None:
    """Write a self-contained HTML report of the ranking (no network needed to view it).

    Charts: PnL distribution by tier, ROI vs win rate, the top wallets' cumulative
    realized PnL over time. "Smart money now": the latest smart-money flows with their
    USD values (gold.token_flows) and the latest alerts (ops.alerts: rule, token, wallet,
    USD, safety verdict, state per channel, when).

    Example: st gold report --out report.html --top 10
    """
    from smarttrader_cli.report.html import write_report

    app_ctx = app_context(ctx)
    summary = write_report(app_ctx.lake, app_ctx.config, out, top=top)
    sys.stdout.write(f"wrote {out} ({summary.wallets} wallets, {summary.charts} charts)\n")
