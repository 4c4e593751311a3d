"""`st demo`: the whole pipeline, batch and stream, against the offline simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smarttrader_cli.cli.options import app_context
from smarttrader_cli.cli.output import echo_kv

if TYPE_CHECKING:
    from smarttrader_cli.stages.contract import StageResult


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary lake, config and state afterwards.")
    ] = False,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Use (and keep) this folder for the lake, config and state.",
            file_okay=False,
        ),
    ] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="Ranked wallets to print.")] = 15,
) -> None:
    """Start the simulator, run the whole pipeline against it, print the smart wallets.

    Batch: bronze tokens → whales (holders, top traders, gainers) → trades → silver pnl →
    gold rank (flags: bots, snipers, distributors, pools, exchange and burn holders left
    out) → helius sync.
    Stream: bronze prices, then the simulator delivers Helius webhooks to an embedded
    `st webhook serve` while `st follow` drains them and sends its alerts to a simulated
    Telegram (printed with their latency), then silver webhooks → gold flows. Embedded
    defaults (local lake,
    DuckDB, local stream backend) in a temporary folder; nothing leaves 127.0.0.1 and
    your own config file is not read.

    Example: st demo --keep
    """
    from smarttrader_cli.cli.gold import print_flows, print_ranking
    from smarttrader_cli.cli.pipeline import run_and_summarise
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.demo import (
        DEMO_ENV,
        demo_env,
        flag_check,
        flag_lines,
        planted_check,
        reserve_port,
        sent_alerts,
        simulator,
        stream_stages,
        workspace,
        write_config,
    )
    from smarttrader_cli.lake.readers import ranked_wallets
    from smarttrader_cli.lake.tables import WALLET_FLAGS
    from smarttrader_cli.pipeline import plan
    from smarttrader_cli.sim.telegram import FakeTelegram

    parent = app_context(ctx)
    sock = reserve_port()
    try:
        with (
            workspace(directory, keep) as space,
            simulator() as sim,
            demo_env(),
            FakeTelegram(DEMO_ENV["ST_TELEGRAM_BOT_TOKEN"]) as telegram,
        ):
            webhook_url = write_config(space, sim.base_url, sock.getsockname()[1], telegram.url)
            app = AppContext(
                config_path=space.config_path,
                log_format=parent.log_format,
                verbose=parent.verbose,
                quiet=parent.quiet,
            )
            results: dict[str, StageResult] = {}
            stream = stream_stages(sim, sock, webhook_url, results)
            run_and_summarise(app, plan(app.config) + stream)
            rows = ranked_wallets(app.lake)
            check = planted_check(rows, sim.market.truth())
            flags = app.lake.read(WALLET_FLAGS).to_pylist()
            flagged = flag_check(flags, rows, sim.market.labels())
            title = f"smart wallets found by st (top {min(top, len(rows))} of {len(rows)})"
            print_ranking(rows[:top], title)
            flows = results["gold.flows"]
            since = flows.details["since"]
            print_flows(flows.records[:10], f"what smart money traded since {since:%H:%M} UTC")
            alerts = sent_alerts(app.lake, telegram)
            print_alerts(alerts, results["follow"])
            lake_note = (
                str(space.lake) if space.keep else f"{space.lake} (removed; --keep keeps it)"
            )
            echo_kv([
                ("planted smart wallets ranked",
                 f"{check['planted_smart_ranked']} of {check['planted_smart']}"),
                ("planted losing wallets ranked",
                 f"{check['planted_losing_ranked']} of {check['planted_losing']}"),
                *flag_lines(flagged),
                ("lake", lake_note),
                ("config", space.config_path if space.keep else "(temporary)"),
            ])  # fmt: skip
            if space.keep:
                cfg = space.config_path
                sys.stdout.write(
                    f"\nExplore it: st --config {cfg} lake tables\n"
                    f"            st --config {cfg} gold report --out report.html\n"
                )
    finally:
        sock.close()


def print_alerts(alerts: list[dict[str, Any]], follow: StageResult) -> None:
    """The alerts `st follow` sent during the demo, the latest first, and their latency."""
    from smarttrader_cli.cli.output import emit

    timed = sorted(a["latency_s"] for a in alerts if a["latency_s"] is not None)
    shown = [
        {**a, "latency_s": "-" if a["latency_s"] is None else f"{a['latency_s']:.2f}"}
        for a in alerts[:10]
    ]
    emit(shown, columns=["rule", "alert", "latency_s"],
         title=f"alerts st follow sent to Telegram (latest {len(shown)} of {len(alerts)})")  # fmt: skip
    if timed:
        p50, p99 = timed[len(timed) // 2], timed[min(len(timed) - 1, int(0.99 * len(timed)))]
        line = f"{len(alerts)} alerts sent; webhook → Telegram p50 {p50:.2f} s, p99 {p99:.2f} s"
    else:
        line = f"{len(alerts)} alerts sent"
    sys.stdout.write(f"{line} ({follow.details['events_written']} events followed)\n")
