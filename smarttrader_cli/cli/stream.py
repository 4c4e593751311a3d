"""`st stream`: move webhook events from the stream into the lake."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, app_context, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(
    help="The webhook event stream (Kafka/Redpanda or the local log) and its drain.",
    no_args_is_help=True,
)
# What `st stream drain` prints of its result, in order.
DRAIN_COLUMNS = (
    "messages",
    "events_written",
    "duplicates",
    "dead_letters",
    "commits",
    "conflicts",
    "caught_up",
    "lag",
    "seconds",
    "events_per_second",
)


@app.command("drain")
def drain(
    ctx: typer.Context,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Stop after this many messages.")
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option("--max-seconds", min=0.1, help="Stop after this many seconds.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Keep waiting for new events once caught up (until a limit)."
        ),
    ] = False,
    reset_offsets: Annotated[
        bool,
        typer.Option(
            "--reset-offsets",
            help="First record new offsets at the stream's start (when the drain refuses "
            "offsets past the stream's end: the stream was recreated or stream.topic "
            "changed). What it holds is read again; stored signatures are not written twice.",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Drain the stream into bronze.webhook_events exactly once, one Delta commit per batch.

    Runs until caught up (for cron every 5 minutes) or until a limit is hit. Offsets are
    stored in the table itself, per topic and stream, so a crash at any point loses and
    duplicates nothing.

    Example: st stream drain --max-seconds 240
    """
    refuse_if_running(ctx, "stream.drain")
    from smarttrader_cli.stages import stream_drain
    from smarttrader_cli.stream.drain import DrainLimits

    limits = DrainLimits(max_messages, max_seconds, follow)
    result = stream_drain.run(stage_context(ctx), limits=limits, reset_offsets=reset_offsets)
    emit([result.as_row()], fmt, DRAIN_COLUMNS, title="stream drain")


@app.command("status")
def status(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Per partition: the offset committed to the lake, the stream's end, and the lag.

    Example: st stream status --format json
    """
    from smarttrader_cli.stream.status import stream_status

    app_ctx = app_context(ctx)
    emit(
        stream_status(app_ctx.config, app_ctx.lake),
        fmt,
        ["partition", "committed_offset", "end_offset", "lag"],
        title="stream",
    )
