"""The outbox on a real Delta table, with channels answering through httpx.MockTransport."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.delivery import Deliverer
from smarttrader_cli.alerts.outbox import Alert, alert_id, enqueue
from smarttrader_cli.config.alerts_schema import AlertsConfig
from smarttrader_cli.config.loader import Secrets
from smarttrader_cli.errors import UsageError
from smarttrader_cli.lake.store import CommitMeta, Lake

META = CommitMeta("run-1", "alerts.deliver", "h")
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SECRETS = Secrets(
    slack_webhook_url="http://slack.test/hook", discord_webhook_url="http://discord.test/hook"
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Server:
    """Answers per host from a script (last answer repeats) and logs what arrived."""

    def __init__(self, **scripts: list[int]) -> None:
        self.scripts = scripts
        self.calls: Counter[str] = Counter()
        self.received: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host.split(".")[0]
        script = self.scripts.get(host, [200])
        status = script[min(self.calls[host], len(script) - 1)]
        self.calls[host] += 1
        if 200 <= status < 300:
            body = json.loads(request.content)
            self.received.append((host, body.get("text") or body.get("content")))
        return httpx.Response(status, text="ok" if status < 300 else "nope")


def _alerts(*channels: str, **keys: Any) -> AlertsConfig:
    alerts = AlertsConfig(channels=list(channels))
    alerts.slack.rate_limit_rps = alerts.discord.rate_limit_rps = 0
    for k, v in keys.items():
        setattr(alerts, k, v)
    return alerts


def _deliverer(lake: Lake, server: Server, clock: Clock, *channels: str, **keys: Any) -> Deliverer:
    alerts = _alerts(*channels, **keys)
    return Deliverer(
        lake, alerts, SECRETS, transport=httpx.MockTransport(server), sleep=lambda s: None,
        clock=clock,
    )  # fmt: skip


def _alert(n: int) -> Alert:
    return Alert("wallet_buy", f"Token{n}", f"sig{n}", f"smart buy #{n}", {"usd": n}, T0)


def _states(lake: Lake) -> dict[tuple[str, str], str]:
    return {(r["alert_key"], r["channel"]): r["state"] for r in outbox.listing(lake)}


def test_an_alert_id_is_a_digest_of_rule_token_and_key() -> None:
    assert _alert(1).id == alert_id("wallet_buy", "Token1", "sig1")
    assert _alert(1).id != _alert(2).id
    assert alert_id("a", "bc", "d") != alert_id("ab", "c", "d")


def test_enqueueing_the_same_alerts_again_adds_nothing(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    assert enqueue(lake, [_alert(1), _alert(2)], ["slack", "discord"], META, T0) == 4
    assert enqueue(lake, [_alert(1), _alert(2), _alert(3)], ["slack", "discord"], META, T0) == 2
    rows = outbox.listing(lake)
    assert len(rows) == 6 and {r["state"] for r in rows} == {"pending"}
    assert json.loads(rows[0]["payload"])["id"] == rows[0]["alert_id"]


def test_delivery_sends_each_alert_once_per_channel_even_when_rerun(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(), Clock()
    enqueue(lake, [_alert(n) for n in range(5)], ["slack", "discord"], META, T0)
    with _deliverer(lake, server, clock, "slack", "discord", batch_size=2) as d:
        report = d.deliver(META)
        assert report.sent == 10 and report.rounds == 3
        enqueue(lake, [_alert(n) for n in range(5)], ["slack", "discord"], META, T0)
        assert d.deliver(META).sent == 0
    assert server.calls == {"slack": 5, "discord": 5}
    assert set(_states(lake).values()) == {"sent"}


def test_a_server_error_is_retried_after_its_backoff(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(slack=[500, 503, 200]), Clock()
    enqueue(lake, [_alert(1), _alert(2)], ["slack"], META, T0)
    with _deliverer(lake, server, clock, "slack", backoff_base_seconds=10) as d:
        first = d.deliver(META)
        assert (first.sent, first.retried) == (0, 1)
        (row,) = [r for r in outbox.listing(lake) if r["alert_key"] == "sig1"]
        assert row["attempts"] == 1 and "HTTP 500" in row["last_error"]
        assert T0 + timedelta(seconds=5) <= row["next_attempt_at"] <= T0 + timedelta(seconds=10)
        # the alert behind the failed one waited with it, without losing an attempt
        (behind,) = [r for r in outbox.listing(lake) if r["alert_key"] == "sig2"]
        assert behind["state"] == "pending" and behind["attempts"] == 0
        assert d.deliver(META).sent == 0  # not due yet: nothing sent
        clock.advance(10)
        assert d.deliver(META).retried == 1  # 503
        clock.advance(20)
        assert d.deliver(META).sent == 2
    assert server.received == [("slack", "smart buy #1"), ("slack", "smart buy #2")]


def test_after_max_attempts_an_alert_is_dead_and_replay_sends_it(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(slack=[500]), Clock()
    enqueue(lake, [_alert(1)], ["slack"], META, T0)
    with _deliverer(lake, server, clock, "slack", max_attempts=3, backoff_base_seconds=1) as d:
        reports = []
        for _ in range(5):
            reports.append(d.deliver(META))
            clock.advance(3600)
    assert [r.dead for r in reports] == [0, 0, 1, 0, 0] and server.calls["slack"] == 3
    (row,) = outbox.listing(lake, state="dead")
    assert row["attempts"] == 3 and "after 3 attempts" in row["last_error"]

    server.scripts["slack"] = [200]
    outbox.reopen(lake, row["alert_id"], META, now=clock.now)
    with _deliverer(lake, server, clock, "slack") as d:
        assert d.deliver(META).sent == 1
    (row,) = outbox.listing(lake)
    assert (row["state"], row["replays"], row["attempts"]) == ("sent", 1, 1)
    with pytest.raises(UsageError, match="no alert"):
        outbox.reopen(lake, "nope", META)


def test_a_permanent_refusal_is_dead_at_once(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(discord=[404]), Clock()
    enqueue(lake, [_alert(1)], ["discord", "slack"], META, T0)
    with _deliverer(lake, server, clock, "discord", "slack") as d:
        report = d.deliver(META)
    assert (report.dead, report.sent) == (1, 1)
    assert _states(lake) == {("sig1", "discord"): "dead", ("sig1", "slack"): "sent"}


def test_a_row_left_in_flight_is_resent_and_counted(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(), Clock()
    enqueue(lake, [_alert(1), _alert(2)], ["slack"], META, T0)
    rows = outbox.listing(lake)
    for row in rows:  # what a deliverer killed between its claim and its outcome leaves
        row["state"] = "sending"
    outbox.save(lake, rows[:1], META)
    with _deliverer(lake, server, clock, "slack") as d:
        report = d.deliver(META)
    assert (report.sent, report.uncertain) == (2, 1)
    counts = {r["alert_key"]: r["uncertain_sends"] for r in outbox.listing(lake)}
    assert counts == {rows[0]["alert_key"]: 1, rows[1]["alert_key"]: 0}


def test_no_channel_configured_delivers_nothing(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(), Clock()
    enqueue(lake, [_alert(1)], ["slack"], META, T0)
    with _deliverer(lake, server, clock) as d:
        assert d.deliver(META).sent == 0
    assert server.calls == {} and _states(lake) == {("sig1", "slack"): "pending"}


def test_rows_sent_longer_ago_than_the_retention_expire(tmp_path: Path) -> None:
    lake, server, clock = Lake(str(tmp_path / "lake")), Server(discord=[404]), Clock()
    enqueue(lake, [_alert(1), _alert(2)], ["slack", "discord"], META, T0)
    with _deliverer(lake, server, clock, "slack", "discord") as d:
        d.deliver(META)
    assert outbox.expire(lake, 30, META, now=T0 + timedelta(days=29)) == 0
    assert outbox.expire(lake, 30, META, now=T0 + timedelta(days=31)) == 2
    assert set(_states(lake).values()) == {"dead"}  # dead letters stay
    assert outbox.expire(lake, 30, META, now=T0 + timedelta(days=99)) == 0
