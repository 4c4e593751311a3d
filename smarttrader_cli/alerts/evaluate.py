"""Raising the rules' alerts over new buy legs, queueing them, delivering: one call.

`evaluate_and_deliver` is what a batch stage (`st alerts run`) and a long-running
process (`st follow`) both call with the legs they just read; it needs no CLI state.
The buy alerts pass the token safety gate (alerts/safety.py) on the way: give it a
`SafetyGate` to keep (a long-running process keeps its cache in memory), or let each
call make one with the API key from the environment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.alerts import rules
from smarttrader_cli.alerts.outbox import BLOCKED, Alert, enqueue, listing
from smarttrader_cli.alerts.safety import gate_for
from smarttrader_cli.lake.tables import SMART_WALLETS, TS, WEBHOOK_SWAPS

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.alerts.delivery import Deliverer, DeliveryReport
    from smarttrader_cli.alerts.rules import RankedWallet
    from smarttrader_cli.alerts.safety import SafetyGate
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.alerts")

LEG_COLUMNS = ["signature", "wallet", "direction", "token_address", "value_usd", "event_time"]
# The legs at or after a time, of some tokens: what a confluence looks back at.
Context = Callable[[datetime, set[str]], Iterable[Mapping[str, Any]]]


@dataclass
class Evaluation:
    """What one evaluation did: the smart buys found, the alerts raised, the rows queued."""

    buys: list[rules.Trade] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    queued: int = 0
    delivery: DeliveryReport | None = None


def ranked_wallets(lake: Lake) -> dict[str, RankedWallet]:
    """gold.smart_wallets' wallets with their tier and rank (none before `st gold rank`)."""
    if not lake.exists(SMART_WALLETS):
        log.warning("gold.smart_wallets is not written yet (run `st gold rank`): none is ranked")
        return {}
    rows = lake.read(SMART_WALLETS, columns=["wallet_address", "tier", "rank"]).to_pylist()
    return {r["wallet_address"]: rules.RankedWallet(r["tier"], r["rank"]) for r in rows}


def legs_since(lake: Lake, since: datetime, tokens: set[str] | None = None) -> pa.Table:
    """The legs of silver.webhook_swaps at or after `since` (of `tokens`, when given)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not lake.exists(WEBHOOK_SWAPS):
        return WEBHOOK_SWAPS.schema.empty_table().select(LEG_COLUMNS)
    import pyarrow.compute as pc

    where = ds.field("event_time") >= pa.scalar(since, type=TS)
    dataset = lake.table(WEBHOOK_SWAPS).to_pyarrow_dataset()
    legs = dataset.to_table(columns=LEG_COLUMNS, filter=where)
    if tokens is None:
        return legs
    # in memory: a pushed-down string comparison may meet a string_view file (outbox.py)
    return legs.filter(pc.is_in(legs.column("token_address"), value_set=pa.array(sorted(tokens))))


def raise_alerts(
    lake: Lake,
    config: Config,
    legs: Iterable[Mapping[str, Any]],
    now: datetime | None = None,
    ranked: Mapping[str, RankedWallet] | None = None,
    context: Context | None = None,
    *,
    gate: SafetyGate | None = None,
    meta: CommitMeta | None = None,
    alerted: set[tuple[str, str]] | None = None,
) -> Evaluation:
    """The alerts the rules raise over `legs` (confluence also looks a window back, in
    silver.webhook_swaps unless `context` gives those legs; exits look up the buys alerted
    in the outbox unless `alerted` holds them, as (wallet, token)), the buy alerts with the
    safety gate's verdict on their token (`gate`, or one made for this call when
    alerts.safety.enabled; `meta` is the commit of its cache)."""
    settings = config.alerts.rules
    now = now or datetime.now(UTC)
    legs = list(legs)
    ranked = ranked_wallets(lake) if ranked is None else ranked
    quotes = [*config.pnl.quote_assets, *config.prices.stablecoins]
    recent = now - timedelta(minutes=settings.max_age_minutes)
    fresh = rules.smart_trades(legs, ranked, quotes, recent)
    alerts = rules.wallet_buy_alerts(fresh, settings.wallet_buy)
    sells = (
        rules.smart_trades(legs, ranked, quotes, recent, "sell") if settings.exit.enabled else []
    )
    if sells:
        alerted = (_alerted_buys(lake) if alerted is None else alerted) | {
            (a.data["wallet"], a.token_address) for a in alerts if a.rule == rules.WALLET_BUY
        }
        alerts += rules.exit_alerts(sells, alerted, settings.exit)
    if fresh and settings.confluence.enabled:
        # The buy that completes a set may need older ones, up to a window back.
        since = min(b.event_time for b in fresh) - timedelta(
            minutes=settings.confluence.window_minutes
        )
        tokens = {b.token_address for b in fresh}
        earlier = (
            legs_since(lake, since, tokens).to_pylist()
            if context is None
            else list(context(since, tokens))
        )
        buys = rules.smart_trades(earlier, ranked, quotes, since)
        alerts += [
            a
            for a in rules.confluence_alerts(buys, settings.confluence)
            if a.event_time is not None and a.event_time >= recent
        ]
    if alerts and config.alerts.channels:  # no channel, no alert to hold back: ask nothing
        gate = gate or gate_for(lake, config)
        if gate is not None:
            alerts = gate.apply(alerts, meta)
    return Evaluation(fresh, alerts)


def _alerted_buys(lake: Lake) -> set[tuple[str, str]]:
    """(wallet, token) of every wallet_buy alert the outbox holds."""
    return alerted_buys(listing(lake))


def alerted_buys(rows: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(wallet, token) of the wallet_buy alerts among outbox rows."""
    found = set()
    for row in rows:
        # a blocked buy was never sent: its wallet's exit would come out of the blue
        if row["rule"] == rules.WALLET_BUY and row["state"] != BLOCKED:
            wallet = json.loads(row["payload"] or "{}").get("data", {}).get("wallet")
            if wallet:
                found.add((wallet, row["token_address"]))
    return found


def evaluate_and_deliver(
    lake: Lake,
    config: Config,
    legs: Iterable[Mapping[str, Any]],
    meta: CommitMeta,
    deliverer: Deliverer | None,
    *,
    now: datetime | None = None,
    cursor: tuple[str, int] | None = None,
    ranked: Mapping[str, RankedWallet] | None = None,
    context: Context | None = None,
    gate: SafetyGate | None = None,
) -> Evaluation:
    """Raise the alerts over `legs`, queue them on every channel (one commit, with `cursor`;
    those the safety gate blocks as `blocked`), then let `deliverer` (its caller holding
    the delivery lock) send what is due."""
    evaluation = raise_alerts(lake, config, legs, now, ranked, context, gate=gate, meta=meta)
    channels = list(dict.fromkeys(config.alerts.channels))
    if evaluation.alerts and not channels:
        log.warning("%d alerts matched but alerts.channels is empty", len(evaluation.alerts))
    evaluation.queued = enqueue(lake, evaluation.alerts, channels, meta, cursor=cursor)
    if deliverer is not None and channels:
        evaluation.delivery = deliverer.deliver_due(meta)
    return evaluation
