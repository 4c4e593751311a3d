"""The alerts outbox, `ops.alerts`: one row per alert and channel, committed before a send.

An alert's id is a digest of what it is about (rule, token, and the window or signature
that makes it unique), so raising the same alert twice finds its row and adds nothing.
A row's state moves pending -> sending (claimed, one commit for a batch) -> sent or back
to pending (a retry, with `next_attempt_at`) or dead (attempts spent, or a permanent
refusal). A buy alert the safety gate blocked (alerts/safety.py) is `blocked` from the start:
never due, never sent, listed with its reasons; `st alerts replay` sends it after all.
Only one deliverer runs at a time (delivery.py holds a lock), so a row found
in `sending` was left by a deliverer that died mid-send: it may or may not have arrived,
and resending it is counted in `uncertain_sends` (docs/reliability.md, "Alerts").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import UsageError
from smarttrader_cli.lake.tables import ALERTS

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.alerts.safety import Verdict
    from smarttrader_cli.lake.store import CommitMeta, Lake

PENDING, SENDING, SENT, DEAD, BLOCKED = "pending", "sending", "sent", "dead", "blocked"
STATES = (PENDING, SENDING, SENT, DEAD, BLOCKED)


def alert_id(rule: str, token_address: str, key: str) -> str:
    """The deterministic id of the alert `rule` raises about `token_address` for `key`."""
    digest = hashlib.sha256("\x1f".join((rule, token_address, key)).encode()).hexdigest()
    return digest[:24]


@dataclass(frozen=True)
class Alert:
    """One alert: the rule that raised it, its token, what makes it unique, and its text."""

    rule: str
    token_address: str
    key: str  # the window or the signature
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    event_time: datetime | None = None
    safety: Verdict | None = None  # the safety gate's verdict on its token (None: not gated)

    @property
    def id(self) -> str:
        return alert_id(self.rule, self.token_address, self.key)

    def body(self) -> str:
        """The JSON the generic webhook sends (and signs)."""
        when = self.event_time.isoformat() if self.event_time else None
        document = {
            "id": self.id,
            "rule": self.rule,
            "token_address": self.token_address,
            "key": self.key,
            "event_time": when,
            "text": self.text,
            "data": self.data,
        }
        if self.safety is not None:
            document["safety"] = self.safety.as_dict()
        return json.dumps(document, sort_keys=True, default=str, ensure_ascii=False)


def enqueue(
    lake: Lake,
    alerts: Iterable[Alert],
    channels: Sequence[str],
    meta: CommitMeta,
    now: datetime | None = None,
    cursor: tuple[str, int] | None = None,
) -> int:
    """Add each alert once per channel, pending, or blocked when its safety verdict blocks
    it (one commit); returns the rows added.

    Rows already there are left as they are, whatever their state: an alert raised again
    is not sent again (nor judged again). `cursor` (app id, version), a reader's position in its source, is
    committed with the rows (alone when there are none).
    """
    return _insert(lake, new_rows(alerts, channels, meta, now), meta, cursor)


def new_rows(
    alerts: Iterable[Alert],
    channels: Sequence[str],
    meta: CommitMeta,
    now: datetime | None = None,
    claimed: int = 0,
) -> list[dict[str, Any]]:
    """The rows of each alert on each channel: pending, `blocked` when its safety verdict
    blocks it, or `sending` (claimed by this deliverer) for the first `claimed` of each
    channel that are not blocked."""
    now = now or datetime.now(UTC)
    rows = []
    taken: dict[str, int] = {}
    for alert in alerts:
        blocked = alert.safety is not None and alert.safety.blocks
        for channel in channels:
            claim = not blocked and taken.get(channel, 0) < claimed
            taken[channel] = taken.get(channel, 0) + claim
            state = BLOCKED if blocked else SENDING if claim else PENDING
            rows.append(
                {
                    "alert_id": alert.id,
                    "channel": channel,
                    "rule": alert.rule,
                    "token_address": alert.token_address,
                    "alert_key": alert.key,
                    "text": alert.text,
                    "payload": alert.body(),
                    "event_time": alert.event_time,
                    "state": state,
                    "attempts": 0,
                    "uncertain_sends": 0,
                    "replays": 0,
                    "created_at": now,
                    "next_attempt_at": None if blocked else now,
                    "claimed_at": now if claim else None,
                    "updated_at": now,
                    "run_id": meta.run_id,
                    "safety": alert.safety.status if alert.safety else None,
                    "safety_reasons": "; ".join(alert.safety.reasons) if alert.safety else None,
                }
            )
    return rows


def insert_claimed(
    lake: Lake,
    rows: Sequence[dict[str, Any]],
    meta: CommitMeta,
    cursor: tuple[str, int] | None = None,
    outcomes: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Insert rows of alerts the caller knows are new, with `outcomes` (rows it sent
    earlier, in their new states) and `cursor`, in one commit; returns the rows it claimed
    (`sending`), for it to send at once.

    Only a deliverer holding the delivery lock, and the only process adding alerts, may do
    this: the claim and the queueing are then one commit. A crash before the outcomes of
    what it sent are committed leaves them `sending`: resent and counted as uncertain.
    """
    import pyarrow as pa

    everything = [*outcomes, *rows]
    txns = [cursor] if cursor else []
    if everything:
        table = pa.Table.from_pylist(everything, schema=ALERTS.schema)
        lake.merge(ALERTS, table, meta, app_transactions=txns)
    elif txns:
        lake.append(ALERTS, ALERTS.schema.empty_table(), meta, app_transactions=txns)
    return [r for r in rows if r["state"] == SENDING]


def _insert(
    lake: Lake, rows: Sequence[dict[str, Any]], meta: CommitMeta, cursor: tuple[str, int] | None
) -> int:
    import pyarrow as pa

    txns = [cursor] if cursor else []
    if not rows:
        if txns:
            lake.append(ALERTS, ALERTS.schema.empty_table(), meta, app_transactions=txns)
        return 0
    table = pa.Table.from_pylist(list(rows), schema=ALERTS.schema)
    return lake.merge(ALERTS, table, meta, update_existing=False, app_transactions=txns).inserted


def _read(lake: Lake, states: Sequence[str] | None = None) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = lake.read(ALERTS)
    if not states:
        return table
    # Filtered here, not in the scan: delta-rs writes strings as string_view in some files,
    # and a pushed-down comparison of string with string_view has no pyarrow kernel.
    return table.filter(pc.is_in(table.column("state"), value_set=pa.array(list(states))))


def due(
    lake: Lake, channels: Sequence[str], now: datetime, per_channel: int
) -> list[dict[str, Any]]:
    """Rows to send now, oldest first, at most `per_channel` per channel.

    Pending rows whose next attempt has come, and every row left in `sending`.
    """
    found = [
        r
        for r in _read(lake, (PENDING, SENDING)).to_pylist()
        if r["channel"] in channels
        and (r["state"] == SENDING or r["next_attempt_at"] is None or r["next_attempt_at"] <= now)
    ]
    found.sort(key=lambda r: (r["created_at"], r["alert_id"]))
    taken: dict[str, int] = {}
    out = []
    for row in found:
        if taken.get(row["channel"], 0) < per_channel:
            taken[row["channel"]] = taken.get(row["channel"], 0) + 1
            out.append(row)
    return out


def next_attempt(lake: Lake, channels: Sequence[str]) -> datetime | None:
    """When the earliest pending row of `channels` is due (None: nothing pending)."""
    times = [
        r["next_attempt_at"] or datetime.min.replace(tzinfo=UTC)
        for r in _read(lake, (PENDING, SENDING)).to_pylist()
        if r["channel"] in channels
    ]
    return min(times, default=None)


def save(lake: Lake, rows: Sequence[dict[str, Any]], meta: CommitMeta) -> None:
    """Write these rows' new states in one commit."""
    import pyarrow as pa

    if rows:
        lake.merge(ALERTS, pa.Table.from_pylist(list(rows), schema=ALERTS.schema), meta)


def listing(
    lake: Lake,
    *,
    state: str | None = None,
    channel: str | None = None,
    alert: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows, newest first, filtered by state, channel or alert id."""
    rows = [
        r
        for r in _read(lake, (state,) if state else None).to_pylist()
        if (channel is None or r["channel"] == channel)
        and (alert is None or r["alert_id"] == alert)
    ]
    rows.sort(key=lambda r: (r["created_at"], r["alert_id"], r["channel"]), reverse=True)
    return rows[:limit] if limit else rows


def reopen(
    lake: Lake,
    alert: str,
    meta: CommitMeta,
    channel: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Make an alert pending again on its channels (or one), dead or sent alike; returns them.

    Its attempts start again from 0; `replays` counts how often this was done.
    """
    now = now or datetime.now(UTC)
    rows = listing(lake, alert=alert, channel=channel)
    if not rows:
        where = f" on channel {channel}" if channel else ""
        raise UsageError(f"no alert {alert!r}{where} in ops.alerts")
    for row in rows:
        row.update(
            state=PENDING,
            attempts=0,
            replays=(row["replays"] or 0) + 1,
            next_attempt_at=now,
            last_error=None,
            updated_at=now,
            run_id=meta.run_id,
        )
    save(lake, rows, meta)
    return rows


def expire(lake: Lake, days: int, meta: CommitMeta, now: datetime | None = None) -> int:
    """Delete rows sent, or blocked, more than `days` ago (one commit, when there are any);
    returns them.

    Dead and pending rows stay. An alert whose row expired is not raised again: rules
    ignore buys older than alerts.rules.max_age_minutes, which must be shorter.
    """
    from smarttrader_cli.lake.sql import between

    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    rows = _read(lake, (SENT, BLOCKED)).to_pylist()
    ended = (r["sent_at"] if r["state"] == SENT else r["created_at"] for r in rows)
    if not any(when is not None and when < cutoff for when in ended):
        return 0
    sent = f"state = '{SENT}' AND {between('sent_at', before=cutoff)}"
    blocked = f"state = '{BLOCKED}' AND {between('created_at', before=cutoff)}"
    return lake.delete(ALERTS, f"({sent}) OR ({blocked})", meta)
