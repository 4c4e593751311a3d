"""helius.sync: point the Helius webhook at the top smart wallets, editing only on change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import ConfigError
from smarttrader_cli.lake.readers import ranked_wallets
from smarttrader_cli.ops.runs import stage_run

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.context import AppContext
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.sources.helius import HeliusClient

log = logging.getLogger("st.helius")

STAGE = "helius.sync"
CREATE, UPDATE, NONE = "create", "update", "none"


@dataclass
class SyncPlan:
    """What a sync would do: the webhook found (if any) and the address diff."""

    webhook_id: str | None
    desired: list[str]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    action: str = NONE
    reason: str = ""
    applied: bool = False
    run_id: str | None = None

    @property
    def rows_in(self) -> int:
        return len(self.desired)

    @property
    def rows_out(self) -> int:
        """Addresses now on the webhook because of this run (0 when nothing was applied)."""
        return len(self.desired) if self.applied else 0

    def summary(self) -> list[tuple[str, Any]]:
        """Key/value lines for printing."""
        return [
            ("webhook", self.webhook_id or "(none yet)"),
            (
                "action",
                self.action + (" (dry run)" if not self.applied and self.action != NONE else ""),
            ),
            ("reason", self.reason),
            ("addresses", len(self.desired)),
            ("added", len(self.added)),
            ("removed", len(self.removed)),
        ]


def top_wallets(lake: Lake, limit: int) -> list[str]:
    """The best `limit` wallets of gold.smart_wallets, by rank."""
    return [r["wallet_address"] for r in ranked_wallets(lake, limit)]


def webhook_spec(app: AppContext, addresses: list[str]) -> dict[str, Any]:
    """The whole webhook body st wants Helius to hold."""
    helius = app.config.helius
    return {
        "webhookURL": helius.webhook_url,
        "transactionTypes": list(helius.transaction_types),
        "accountAddresses": list(addresses),
        "webhookType": helius.webhook_type,
        "authHeader": app.loaded.secrets.webhook_auth_token or "",
        "txnStatus": "all",
    }


def plan(app: AppContext, client: HeliusClient, desired: list[str]) -> SyncPlan:
    """Compare the webhook Helius holds with the desired addresses (reads only)."""
    result = _diff(app, client, desired)
    if not desired:
        # An empty ranking must not silently stop following everyone.
        result.action, result.added, result.removed = NONE, [], []
        result.reason = "gold.smart_wallets is empty: the webhook is left unchanged"
        log.warning("%s", result.reason)
    return result


def _diff(app: AppContext, client: HeliusClient, desired: list[str]) -> SyncPlan:
    helius = app.config.helius
    matches = [h for h in client.list_webhooks() if h.get("webhookURL") == helius.webhook_url]
    if len(matches) > 1:
        log.warning(
            "%d Helius webhooks deliver to %s; syncing the first (%s)",
            len(matches),
            helius.webhook_url,
            matches[0].get("webhookID"),
        )
    if not matches:
        return SyncPlan(
            None,
            desired,
            added=list(desired),
            action=CREATE,
            reason=f"no webhook delivers to {helius.webhook_url}",
        )
    hook = matches[0]
    current = [a for a in hook.get("accountAddresses") or [] if isinstance(a, str)]
    wanted = set(desired)
    result = SyncPlan(
        str(hook.get("webhookID")),
        desired,
        added=[a for a in desired if a not in set(current)],
        removed=sorted(set(current) - wanted),
    )
    spec = webhook_spec(app, desired)
    drift = [
        k
        for k in ("transactionTypes", "webhookType")
        if k in hook and _norm(hook[k]) != _norm(spec[k])
    ]
    if hook.get("authHeader") not in (None, spec["authHeader"]):
        drift.append("authHeader")
    if result.added or result.removed:
        result.action, result.reason = UPDATE, "the smart-wallet set changed"
    elif drift:
        result.action, result.reason = UPDATE, f"{', '.join(drift)} differ from the config"
    else:
        result.reason = "the webhook already follows exactly these wallets"
    return result


def _norm(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def _check(app: AppContext) -> None:
    helius, secrets = app.config.helius, app.loaded.secrets
    if not helius.webhook_url:
        raise ConfigError("helius.webhook_url is empty: set it to where Helius should deliver")
    if not secrets.helius_api_key:
        raise ConfigError("HELIUS_API_KEY is not set in the environment")
    if not secrets.webhook_auth_token:
        raise ConfigError(
            "ST_WEBHOOK_AUTH_TOKEN is not set: the webhook's authHeader must match the receiver"
        )


def sync(
    app: AppContext, *, dry_run: bool = False, transport: httpx.BaseTransport | None = None
) -> SyncPlan:
    """Find or create the webhook and replace its addresses when the set changed.

    With `dry_run` only reads happen (gold table, GET webhooks) and no run is recorded.
    """
    from smarttrader_cli.sources.helius import HeliusClient

    _check(app)
    helius = app.config.helius
    client = HeliusClient.from_config(helius, app.loaded.secrets.helius_api_key or "", transport)
    with client:
        if dry_run:
            return plan(app, client, top_wallets(app.lake, helius.max_addresses))
        with stage_run(app, STAGE, {"max_addresses": helius.max_addresses}) as run:
            desired = top_wallets(app.lake, helius.max_addresses)
            run.rows_in = len(desired)
            result = plan(app, client, desired)
            result.run_id = run.run_id
            if result.action == CREATE:
                created = client.create_webhook(webhook_spec(app, desired))
                result.webhook_id = str(created["webhookID"])
            elif result.action == UPDATE and result.webhook_id:
                client.replace_webhook(result.webhook_id, webhook_spec(app, desired))
            result.applied = result.action != NONE
            run.rows_out = len(desired) if result.applied else 0
            log.info(
                "helius webhook %s: %s (+%d −%d, %d addresses)",
                result.webhook_id,
                result.action,
                len(result.added),
                len(result.removed),
                len(desired),
            )
            return result
