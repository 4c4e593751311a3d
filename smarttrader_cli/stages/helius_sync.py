"""helius.sync: point the Helius webhook at the top smart wallets, editing only on change."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import ConfigError
from smarttrader_cli.lake.readers import ranked_wallets
from smarttrader_cli.stages.contract import StageResult, stage

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.helius import HeliusClient
    from smarttrader_cli.stages.contract import StageContext

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


def top_wallets(lake: Lake, limit: int) -> list[str]:
    """The best `limit` wallets of gold.smart_wallets, by rank."""
    return [r["wallet_address"] for r in ranked_wallets(lake, limit)]


def webhook_spec(ctx: StageContext, addresses: list[str]) -> dict[str, Any]:
    """The whole webhook body st wants Helius to hold."""
    helius = ctx.config.helius
    return {
        "webhookURL": helius.webhook_url,
        "transactionTypes": list(helius.transaction_types),
        "accountAddresses": list(addresses),
        "webhookType": helius.webhook_type,
        "authHeader": ctx.secrets.webhook_auth_token or "",
        "txnStatus": "all",
    }


def plan(ctx: StageContext, client: HeliusClient, desired: list[str]) -> SyncPlan:
    """Compare the webhook Helius holds with the desired addresses (reads only)."""
    result = _diff(ctx, client, desired)
    if not desired:
        # An empty ranking must not silently stop following everyone.
        result.action, result.added, result.removed = NONE, [], []
        result.reason = "gold.smart_wallets is empty: the webhook is left unchanged"
        log.warning("%s", result.reason)
    return result


def _diff(ctx: StageContext, client: HeliusClient, desired: list[str]) -> SyncPlan:
    helius = ctx.config.helius
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
    spec = webhook_spec(ctx, desired)
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


def _check(ctx: StageContext, **_: Any) -> dict[str, Any]:
    helius, secrets = ctx.config.helius, ctx.secrets
    if not helius.webhook_url:
        raise ConfigError("helius.webhook_url is empty: set it to where Helius should deliver")
    if not secrets.helius_api_key:
        raise ConfigError("HELIUS_API_KEY is not set in the environment")
    if not secrets.webhook_auth_token:
        raise ConfigError(
            "ST_WEBHOOK_AUTH_TOKEN is not set: the webhook's authHeader must match the receiver"
        )
    return {"max_addresses": helius.max_addresses}


def _client(ctx: StageContext, transport: httpx.BaseTransport | None) -> HeliusClient:
    from smarttrader_cli.sources.helius import HeliusClient

    return HeliusClient.from_config(ctx.config.helius, ctx.secrets.helius_api_key or "", transport)


def _result(sync: SyncPlan, run_id: str, applied: bool, rows_out: int) -> StageResult:
    changes = [{"change": "added", "wallet_address": a} for a in sync.added]
    changes += [{"change": "removed", "wallet_address": a} for a in sync.removed]
    details = {
        "webhook_id": sync.webhook_id,
        "action": sync.action,
        "reason": sync.reason,
        "applied": applied,
        "addresses": len(sync.desired),
        "added": len(sync.added),
        "removed": len(sync.removed),
    }
    return StageResult(STAGE, run_id, len(sync.desired), rows_out, details, changes)


def preview(ctx: StageContext, transport: httpx.BaseTransport | None = None) -> StageResult:
    """What `run` would do, from reads only (gold table, GET webhooks); no run is recorded."""
    _check(ctx)
    with _client(ctx, transport) as client:
        sync = plan(ctx, client, top_wallets(ctx.lake, ctx.config.helius.max_addresses))
    return _result(sync, "", applied=False, rows_out=0)


@stage(STAGE, writes="the Helius webhook's addresses", command="st helius sync", prepare=_check)
def run(
    ctx: StageContext, current: StageRun, transport: httpx.BaseTransport | None = None
) -> StageResult:
    """Find or create the webhook and replace its addresses when the set changed.

    The result's records are the address changes (added, removed).
    """
    with _client(ctx, transport) as client:
        desired = top_wallets(ctx.lake, ctx.config.helius.max_addresses)
        current.rows_in = len(desired)
        sync = plan(ctx, client, desired)
        if sync.action == CREATE:
            created = client.create_webhook(webhook_spec(ctx, desired))
            sync.webhook_id = str(created["webhookID"])
        elif sync.action == UPDATE and sync.webhook_id:
            client.replace_webhook(sync.webhook_id, webhook_spec(ctx, desired))
        applied = sync.action != NONE
        current.rows_out = len(desired) if applied else 0
        log.info(
            "helius webhook %s: %s (+%d −%d, %d addresses)",
            sync.webhook_id,
            sync.action,
            len(sync.added),
            len(sync.removed),
            len(desired),
        )
        return _result(sync, current.run_id, applied, current.rows_out)
