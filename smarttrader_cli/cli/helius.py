"""`st helius`: keep the Helius webhook pointed at the smart wallets."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, app_context
from smarttrader_cli.cli.output import OutputFormat, echo_kv, emit

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
    from smarttrader_cli.stages.helius_sync import sync as run_sync

    result = run_sync(app_context(ctx), dry_run=dry_run)
    if fmt is OutputFormat.table:
        echo_kv(result.summary())
    changes = [{"change": "added", "wallet_address": a} for a in result.added]
    changes += [{"change": "removed", "wallet_address": a} for a in result.removed]
    if changes or fmt is not OutputFormat.table:
        emit(changes, fmt, ["change", "wallet_address"], title="address changes")
