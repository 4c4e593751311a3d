"""`st alerts`: the alerts outbox and its channels."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, LimitOption, app_context, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(
    help="Alerts: the outbox (ops.alerts) and its Telegram, Discord, Slack and webhook channels.",
    no_args_is_help=True,
)

LIST_COLUMNS = [
    "alert_id",
    "channel",
    "state",
    "safety",
    "attempts",
    "rule",
    "token_address",
    "created_at",
    "sent_at",
    "uncertain_sends",
    "last_error",
    "safety_reasons",
]
ChannelOption = Annotated[str | None, typer.Option("--channel", help="Only this channel.")]


@app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only this state: pending, sending, sent, dead, blocked."),
    ] = None,
    channel: ChannelOption = None,
    limit: LimitOption = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List alerts of the outbox, newest first, one row per alert and channel.

    `safety` is the token safety gate's verdict on a buy alert (passed, blocked, unknown);
    a blocked alert was never sent, and `safety_reasons` says why (`st alerts replay ID`
    sends it after all).

    Example: st alerts list --state blocked --format json
    """
    from smarttrader_cli.alerts.outbox import STATES, listing
    from smarttrader_cli.errors import UsageError

    if state is not None and state not in STATES:
        raise UsageError(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    app = app_context(ctx)
    rows = listing(app.lake, state=state, channel=channel, limit=limit)
    columns = LIST_COLUMNS if fmt is OutputFormat.table else None
    emit(rows, fmt, columns or (list(rows[0]) if rows else LIST_COLUMNS), title="alerts")


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0, help="Keep retrying what falls due for up to this many seconds."
        ),
    ] = 0.0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Send the pending alerts through the configured channels (alerts.channels).

    Failed sends are retried with backoff by later runs (or within --wait); after
    alerts.max_attempts an alert is dead (see `st alerts replay`). Exit 75 while another
    deliverer (`st follow`) runs.

    Example: st alerts deliver --wait 120
    """
    from smarttrader_cli.cli.options import refuse_if_running
    from smarttrader_cli.stages.alerts import DELIVERY_LOCK

    refuse_if_running(ctx, DELIVERY_LOCK)
    from smarttrader_cli.stages.alerts import deliver as stage

    result = stage(stage_context(ctx), wait_seconds=wait)
    emit([result.as_row()], fmt, title="alerts delivered")


@app.command("test")
def test(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="telegram, discord, slack or webhook.")],
    text: Annotated[
        str, typer.Option("--text", help="The message.")
    ] = "st alerts test: this channel works",
) -> None:
    """Send a test message through one channel now; exit 0 if it was delivered, 1 if not.

    The channel need not be listed in alerts.channels; the outbox is not touched.

    Example: ST_TELEGRAM_BOT_TOKEN=123:abc st alerts test telegram --text hello
    """
    from smarttrader_cli.alerts.delivery import send_test

    app = app_context(ctx)
    outcome = send_test(channel, app.config.alerts, app.loaded.secrets, text)
    if not outcome.delivered:
        typer.echo(f"st: {channel}: not delivered: {outcome.error}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{channel}: delivered (HTTP {outcome.status})")


@app.command("replay")
def replay(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="An alert id from `st alerts list`.")],
    channel: ChannelOption = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Send one alert again, dead or sent, on its channels (or one); exit 1 unless sent.

    Its attempts start again from 0. While another deliverer runs, the alert is queued
    for it instead (exit 0).

    Example: st alerts replay 3f9c0a7d1e2b4c5d6e7f8091 --channel telegram
    """
    from smarttrader_cli.alerts.delivery import replay as replay_alert
    from smarttrader_cli.alerts.outbox import SENT
    from smarttrader_cli.lake.store import CommitMeta
    from smarttrader_cli.ops.runs import new_run_id

    app = app_context(ctx)
    meta = CommitMeta(new_run_id(), "alerts.replay", app.loaded.hash)
    rows, report = replay_alert(
        app.lake,
        app.config.alerts,
        app.loaded.secrets,
        app.config.runtime.state_dir,
        alert_id,
        meta,
        channel,
    )
    emit(rows, fmt, ["alert_id", "channel", "state", "attempts", "replays", "last_error"])
    if report is None:
        typer.echo("st: another deliverer holds the lock: it sends the alert next", err=True)
        return
    if any(r["state"] != SENT for r in rows):
        raise typer.Exit(1)


@app.command("run")
def run(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Raise the alert rules' alerts over the smart buys silver.webhook_swaps gained since
    the last run, queue them in the outbox, and deliver what is due.

    Rules (alerts.rules): a wallet of the given tiers buys at least min_usd of a token
    (wallet_buy); min_wallets distinct smart wallets buy one token within window_minutes
    (confluence); a ranked wallet sells what it was alerted buying (exit). Quote assets
    (pnl.quote_assets, prices.stablecoins) are never bought or sold. A buy alert first
    passes the token safety gate (alerts.safety: BirdEye's mint and freeze authority,
    top-10 holder share, liquidity, cached in bronze.token_security): a blocked one is
    queued as blocked and not sent.
    Re-running raises nothing twice: alert ids are digests of rule, token and transaction
    or window.

    Example: ST_ALERTS__RULES__WALLET_BUY__MIN_USD=5000 st alerts run
    """
    from smarttrader_cli.cli.options import refuse_if_running
    from smarttrader_cli.stages.alerts import RULES_STAGE

    refuse_if_running(ctx, RULES_STAGE)
    from smarttrader_cli.stages.alerts import run as stage

    result = stage(stage_context(ctx))
    emit([result.as_row()], fmt, title="alert rules")
