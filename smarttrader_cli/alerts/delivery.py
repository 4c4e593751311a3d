"""Delivering the outbox: claim a batch, send it through the channels, record the outcomes.

One round: the due rows (at most `alerts.batch_size` per channel) are marked `sending` in
one commit, each channel sends its share in its own thread, and the outcomes are
committed together. A channel that fails (5xx, timeout, refused connection, a long 429)
stops for the round: the failed row waits its backoff, and the rows behind it wait with
it, without losing an attempt. `Deliverer` holds no CLI state and keeps its HTTP clients
and rate-limit buckets between rounds, so a long-running process calls `deliver_due` as
often as it likes; it must hold the delivery lock (`delivery_lock`) while it does.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.channels import Channel, Message, Outcome, build_channel

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.config.alerts_schema import AlertsConfig
    from smarttrader_cli.config.loader import Secrets
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.alerts")

DELIVERY_LOCK = "alerts.deliver"  # also the stage name of `st alerts deliver`


@contextmanager
def delivery_lock(state_dir: str | Path, run_id: str) -> Iterator[Path]:
    """Hold the one deliverer's lock; LockHeldError (exit 75) names the process holding it."""
    from smarttrader_cli.ops.locks import stage_lock

    with stage_lock(state_dir, DELIVERY_LOCK, run_id) as path:
        yield path


@dataclass
class DeliveryReport:
    """What delivering did: rows sent, rescheduled, dead-lettered; 429s waited out; sends
    that may arrive twice (`uncertain`: resent after a crash left them in flight, or
    failed after the request went out); rows still pending."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    rate_limited: int = 0
    uncertain: int = 0
    rounds: int = 0
    pending: int = 0

    def add(self, other: DeliveryReport) -> None:
        for f in fields(self):
            if f.name != "pending":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Deliverer:
    """Sends the outbox's due rows through the configured channels (`alerts.channels`)."""

    def __init__(
        self,
        lake: Lake,
        alerts: AlertsConfig,
        secrets: Secrets,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.lake = lake
        self.alerts = alerts
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self.channels: dict[str, Channel] = {
            name: build_channel(name, alerts, secrets, transport=transport, sleep=sleep)
            for name in dict.fromkeys(alerts.channels)
        }

    def close(self) -> None:
        for channel in self.channels.values():
            channel.http.close()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deliver(self, meta: CommitMeta, wait_seconds: float = 0.0) -> DeliveryReport:
        """Send what is due; then, for up to `wait_seconds`, what falls due meanwhile."""
        report = self.deliver_due(meta)
        deadline = time.monotonic() + wait_seconds
        while wait_seconds > 0:
            upcoming = outbox.next_attempt(self.lake, list(self.channels))
            if upcoming is None:
                break
            delay = max(0.0, (upcoming - self._clock()).total_seconds())
            if time.monotonic() + delay > deadline:
                break
            self._sleep(delay)
            report.add(self.deliver_due(meta))
        report.pending = len(outbox.listing(self.lake, state=outbox.PENDING))
        return report

    def deliver_due(self, meta: CommitMeta) -> DeliveryReport:
        """Rounds until nothing is due now."""
        report = DeliveryReport()
        while (done := self.round(meta)) is not None:
            report.add(done)
            if done.sent == 0 and done.dead == 0:
                break  # every channel failed: what is left waits for its backoff
        return report

    def round(self, meta: CommitMeta) -> DeliveryReport | None:
        """Claim, send and record one batch; None when nothing was due."""
        if not self.channels:
            return None
        now = self._clock()
        rows = outbox.due(self.lake, list(self.channels), now, self.alerts.batch_size)
        if not rows:
            return None
        report = DeliveryReport(rounds=1)
        for row in rows:
            if row["state"] == outbox.SENDING:  # a deliverer died after claiming it
                row["uncertain_sends"] = (row["uncertain_sends"] or 0) + 1
                report.uncertain += 1
                log.warning(
                    "alert %s on %s was in flight when its deliverer stopped: resending "
                    "(it may arrive twice)",
                    row["alert_id"],
                    row["channel"],
                )
            row.update(state=outbox.SENDING, claimed_at=now, updated_at=now, run_id=meta.run_id)
        outbox.save(self.lake, rows, meta)  # the claim, committed before anything is sent
        report.add(self.send_claimed(rows, meta))
        return report

    def send_claimed(
        self, rows: list[dict[str, Any]], meta: CommitMeta, commit: bool = True
    ) -> DeliveryReport:
        """Send rows whose claim (`sending`) is committed, and commit their outcomes (or,
        without `commit`, leave that to the caller: the rows hold them)."""
        report = DeliveryReport()
        if not rows:
            return report
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_channel.setdefault(row["channel"], []).append(row)
        with ThreadPoolExecutor(max_workers=len(by_channel), thread_name_prefix="alerts") as pool:
            for part in pool.map(self._send_all, by_channel.items()):
                report.add(part)
        if commit:
            outbox.save(self.lake, rows, meta)
        return report

    def _send_all(self, item: tuple[str, list[dict[str, Any]]]) -> DeliveryReport:
        """Send one channel's rows in order, updating them; stop at the first failure."""
        name, rows = item
        channel = self.channels[name]
        report = DeliveryReport()
        for i, row in enumerate(rows):
            message = Message(row["alert_id"], row["text"] or "", (row["payload"] or "{}").encode())
            outcome = channel.send(message)
            report.rate_limited += outcome.rate_limited
            report.uncertain += outcome.uncertain
            self._record(row, outcome)
            if row["state"] == outbox.SENT:
                report.sent += 1
            elif row["state"] == outbox.DEAD:
                report.dead += 1
                log.error("alert %s on %s is dead: %s", row["alert_id"], name, row["last_error"])
            else:
                report.retried += 1
                log.warning(
                    "alert %s on %s failed (attempt %d): %s; next try at %s",
                    row["alert_id"],
                    name,
                    row["attempts"],
                    row["last_error"],
                    row["next_attempt_at"],
                )
                for later in rows[i + 1 :]:  # the channel is in trouble: they wait too
                    later.update(state=outbox.PENDING, next_attempt_at=row["next_attempt_at"])
                break
        return report

    def _record(self, row: dict[str, Any], outcome: Outcome) -> None:
        now = self._clock()
        attempts = (row["attempts"] or 0) + 1
        row.update(attempts=attempts, last_status=outcome.status, updated_at=now)
        if outcome.uncertain:  # the retry may deliver it a second time
            row["uncertain_sends"] = (row["uncertain_sends"] or 0) + 1
        if outcome.delivered:
            row.update(state=outbox.SENT, sent_at=now, last_error=None)
        elif outcome.permanent:
            row.update(state=outbox.DEAD, last_error=outcome.error)
        elif attempts >= self.alerts.max_attempts:
            row.update(state=outbox.DEAD, last_error=f"{outcome.error} (after {attempts} attempts)")
        else:
            wait = max(self._backoff(attempts), outcome.retry_after or 0.0)
            row.update(
                state=outbox.PENDING,
                last_error=outcome.error,
                next_attempt_at=now + timedelta(seconds=wait),
            )

    def _backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: doubling, half of it jittered."""
        ceiling = min(
            self.alerts.backoff_max_seconds,
            self.alerts.backoff_base_seconds * 2 ** min(attempts - 1, 30),
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)


def send_test(
    name: str,
    alerts: AlertsConfig,
    secrets: Secrets,
    text: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Outcome:
    """Send `text` once through channel `name` (429s waited out), outside the outbox."""
    import json
    import uuid

    channel = build_channel(name, alerts, secrets, transport=transport)
    test_id = f"test-{uuid.uuid4().hex[:12]}"
    body = json.dumps({"id": test_id, "rule": "test", "text": text}).encode()
    try:
        return channel.send(Message(test_id, text, body))
    finally:
        channel.http.close()


def replay(
    lake: Lake,
    alerts: AlertsConfig,
    secrets: Secrets,
    state_dir: str | Path,
    alert: str,
    meta: CommitMeta,
    channel: str | None = None,
) -> tuple[list[dict[str, Any]], DeliveryReport | None]:
    """Make `alert` pending again (dead or sent alike) and deliver what is due.

    Returns its rows afterwards, and the delivery's report; None when another deliverer
    holds the lock (it sends the alert on its next round).
    """
    from smarttrader_cli.errors import LockHeldError

    outbox.reopen(lake, alert, meta, channel)
    try:
        with delivery_lock(state_dir, meta.run_id), Deliverer(lake, alerts, secrets) as deliverer:
            report = deliverer.deliver_due(meta)
    except LockHeldError as exc:
        log.info("%s: it sends alert %s on its next round", exc, alert)
        report = None
    return outbox.listing(lake, alert=alert, channel=channel), report
