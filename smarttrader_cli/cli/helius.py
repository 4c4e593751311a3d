"""`st helius`: keep the Helius webhook pointed at the smart wallets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from smarttrader_cli.cli.options import FormatOption, refuse_if_running, stage_context
from smarttrader_cli.cli.output import OutputFormat, echo_kv, emit

if TYPE_CHECKING:
    from smarttrader_cli.stages.contract import StageResult

app = typer.Typer(help="Helius webhook management.", no_args_is_help=True)


@app.command("sync")
def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the diff (added/removed addresses); change nothing."),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Replace the webhook's accountAddresses with the top helius.max_addresses smart wallets.

    Finds the webhook delivering to helius.webhook_url (or creates it) and edits it only
    when the address set or helius.transaction_types changed. Credits (Helius's
    published prices): each create or edit costs 100 credits, and every event delivered
    costs 1 credit whether it is a swap or not. The default types are SWAP, TRANSFER and
    UNKNOWN because real swaps also arrive labelled TRANSFER (Meteora, pump launches) or
    UNKNOWN (Jupiter routes); the wider list also delivers the wallets' plain transfers,
    which cost a credit each and are dropped by `st silver webhooks`. Set
    helius.transaction_types to [SWAP] to pay for labelled swaps only, and miss the rest.
    Needs HELIUS_API_KEY and ST_WEBHOOK_AUTH_TOKEN in the environment.

    Example: st helius sync --dry-run
    """
    refuse_if_running(ctx, "helius.sync")
    from smarttrader_cli.stages import helius_sync

    stage_ctx = stage_context(ctx)
    result = helius_sync.preview(stage_ctx) if dry_run else helius_sync.run(stage_ctx)
    if fmt is OutputFormat.table:
        echo_kv(summary(result))
    if result.records or fmt is not OutputFormat.table:
        emit(result.records, fmt, ["change", "wallet_address"], title="address changes")


def summary(result: StageResult) -> list[tuple[str, Any]]:
    """The sync as key/value lines; the action says when it was only a dry run."""
    from smarttrader_cli.stages.helius_sync import NONE

    d = result.details
    dry = not d["applied"] and d["action"] != NONE
    return [
        ("webhook", d["webhook_id"] or "(none yet)"),
        ("action", d["action"] + (" (dry run)" if dry else "")),
        ("reason", d["reason"]),
        ("addresses", d["addresses"]),
        ("added", d["added"]),
        ("removed", d["removed"]),
    ]
