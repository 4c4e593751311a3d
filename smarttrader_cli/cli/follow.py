"""`st follow`: the long-running stream → bronze → alerts process, with a live view."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from smarttrader_cli.cli.options import FormatOption, app_context, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

if TYPE_CHECKING:
    from smarttrader_cli.follow.state import FollowState

COLUMNS = (
    "messages",
    "events_written",
    "commits",
    "recovered_events",
    "alerts_raised",
    "alerts_queued",
    "alerts_sent",
    "seconds",
)


def follow(
    ctx: typer.Context,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=0.1, help="Stop after this many seconds.")
    ] = None,
    idle_seconds: Annotated[
        float | None,
        typer.Option(
            "--idle-seconds",
            min=0.1,
            help="Stop once nothing new arrived for this long and the alerts are delivered.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Drain the stream continuously, alert on smart-money buys within a second, keep
    silver.webhook_swaps and gold.token_flows current. Runs until SIGTERM or Ctrl-C
    (the batch in hand is committed, its alerts delivered; exit 0).

    Holds the locks of `st stream drain`, `st alerts run` and `st alerts deliver`: while it
    runs, those exit 75 (run `st follow` instead of them, not beside them). GET /health and
    /metrics on follow.host:follow.port. On a terminal it shows the latest smart buys and
    alerts; otherwise (or with --log-format json) it logs lines.

    Example: st --log-format json follow
    """
    refuse_if_running(ctx, "follow")
    from smarttrader_cli.follow.service import FollowLimits
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.stages import follow as follow_stage

    app = app_context(ctx)
    limits = FollowLimits(max_seconds, idle_seconds)
    state = FollowState(app.config.follow.view_rows)
    _stop_on_signals(limits.stop)
    live = app.log_format == "text" and not app.quiet and sys.stdout.isatty()
    stage_ctx = stage_context(ctx)
    if live:
        result = _with_live_view(
            state, lambda: follow_stage.run(stage_ctx, limits=limits, state=state)
        )
    else:
        result = follow_stage.run(stage_ctx, limits=limits, state=state)
    emit([result.as_row()], fmt, COLUMNS, title="follow")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT end the run cleanly; a second one interrupts at once."""

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _with_live_view(state: FollowState, work: Any) -> Any:
    """Run `work` with a rich Live view of `state` refreshed twice a second."""
    from rich.live import Live

    with Live(_view(state), refresh_per_second=2, transient=False) as live:
        done = threading.Event()

        def refresh() -> None:
            while not done.wait(0.5):
                live.update(_view(state))

        painter = threading.Thread(target=refresh, daemon=True)
        painter.start()
        try:
            return work()
        finally:
            done.set()
            painter.join()
            live.update(_view(state))


def _view(state: FollowState) -> Any:
    from datetime import datetime

    from rich.console import Group
    from rich.table import Table

    _healthy, health = state.health(float("inf"))
    buys, alerts = state.latest()
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[bold]st follow[/] {health['status']}",
        f"events {health['events']:,}",
        f"lag {health['stream_lag']:,}",
        f"alerts sent {health['alerts_sent']:,}",
        f"last commit {health['seconds_since_commit']:.1f} s ago",
    )
    smart = Table(title="latest smart buys", expand=True)
    smart.add_column("time", no_wrap=True)
    smart.add_column("buy")
    for seen in buys:
        smart.add_row(f"{datetime.fromtimestamp(seen.at):%H:%M:%S}", seen.text)
    sent = Table(title="latest alerts", expand=True)
    sent.add_column("time", no_wrap=True)
    sent.add_column("alert")
    sent.add_column("latency", justify="right", no_wrap=True)
    for seen in alerts:
        latency = f"{seen.latency:.2f} s" if seen.latency is not None else "-"
        sent.add_row(f"{datetime.fromtimestamp(seen.at):%H:%M:%S}", seen.text, latency)
    return Group(head, smart, sent)
