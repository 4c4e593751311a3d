"""`st follow` end to end: simulated Helius swaps → `st webhook serve` → the local log →
`st follow` → fake Telegram and webhook servers on loopback, every part its own process.

What the alerts should be comes from the batch path: `st silver webhooks` (which follow
also runs) and the rules over silver.webhook_swaps afterwards.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.evaluate import legs_since, raise_alerts
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import (
    RUNS,
    SMART_WALLETS,
    TOKEN_FLOWS,
    WEBHOOK_EVENTS,
    WEBHOOK_SWAPS,
)
from smarttrader_cli.stream.swaps import parse_swap
from tests.follow_support import (
    ST,
    env_for,
    follow_config,
    ports,
    post,
    seed_lake,
    start_follow,
    start_receiver,
    stop,
    swaps,
)
from tests.harness import KafkaBroker, wait_until, write_config
from tests.integration.test_alerts_delivery import BOT_TOKEN, HMAC_KEY, FakeChannel

RULES = {
    "alerts.rules.wallet_buy.min_usd": 4700,  # about one buy in twenty
    "alerts.rules.exit.min_usd": 4700,
    "alerts.batch_size": 50,
    "alerts.timeout_seconds": 0.5,
    "alerts.backoff_base_seconds": 0.2,
    "alerts.backoff_max_seconds": 1.0,
    "alerts.telegram.chat_id": "-1001",
    "alerts.telegram.rate_limit_rps": 0,
    "alerts.webhook.rate_limit_rps": 0,
}


class Setup:
    """A folder with a config, a seeded lake, the receiver; the channels as given."""

    def __init__(self, tmp_path: Path, events: list[dict[str, Any]], start: int,
                 channels: dict[str, FakeChannel], **overrides: Any) -> None:  # fmt: skip
        self.webhook_port, self.follow_port = ports()
        self.channels = channels
        self.config = write_config(
            tmp_path,
            {
                **follow_config(tmp_path, self.webhook_port, self.follow_port),
                **RULES,
                "alerts.channels": list(channels),
                "alerts.telegram.base_url": channels["telegram"].url,
                "alerts.webhook.url": f"{channels['webhook'].url}/hook",
                **overrides,
            },
        )
        self.lake = Lake(str(tmp_path / "lake"))
        seed_lake(self.lake, events, start)
        self.env = env_for(self.config, ST_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
                           ST_ALERT_WEBHOOK_SECRET=HMAC_KEY)  # fmt: skip
        self.receiver = start_receiver(self.env, self.webhook_port)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.follow_port}/health").json()

    def close(self) -> None:
        stop(self.receiver)
        for channel in self.channels.values():
            channel.stop()


def channels() -> dict[str, FakeChannel]:
    return {"telegram": FakeChannel("telegram"), "webhook": FakeChannel("webhook")}


def expected_alerts(setup: Setup) -> dict[str, str]:
    """The batch path's alerts (id → text) over silver, after `st silver webhooks`."""
    done = subprocess.run([str(ST), "silver", "webhooks"], env=setup.env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = load_config(setup.config).config
    legs = legs_since(setup.lake, datetime(2000, 1, 1, tzinfo=UTC)).to_pylist()
    return {a.id: a.rule for a in raise_alerts(setup.lake, config, legs).alerts}


def check_delivered(setup: Setup, expected: dict[str, str], crashes: bool = False) -> None:
    """The outbox holds exactly the expected alerts, each sent on every channel, and every
    channel received each exactly once (with `crashes`: apart from counted duplicates)."""
    rows = outbox.listing(setup.lake)
    by_rule = Counter(expected.values())
    raised = {r["alert_id"]: r["rule"] for r in rows}
    # An exit is raised for a sell of a token its wallet was alerted buying: seen in the
    # same batch or later than that buy, follow raises it; the batch path sees all at once.
    assert {k: v for k, v in raised.items() if v != "exit"} == {
        k: v for k, v in expected.items() if v != "exit"
    }, (Counter(raised.values()), by_rule)
    assert {k for k, v in raised.items() if v == "exit"} <= set(expected)
    assert {r["state"] for r in rows} == {"sent"}, Counter(r["state"] for r in rows)
    for name, channel in setup.channels.items():
        mine = [r for r in rows if r["channel"] == name]
        texts = Counter(r["text"] for r in mine)
        assert set(channel.received) == set(texts), name
        twice = {t: n for t, n in channel.received.items() if n > texts[t]}
        uncertain = {r["text"] for r in mine if r["uncertain_sends"]}
        if crashes:
            assert set(twice) <= uncertain, (name, twice)
        else:
            assert twice == {}, (name, twice)
    assert setup.channels["webhook"].bad_signatures == 0


def bronze_signatures(lake: Lake) -> Counter[str]:
    return Counter(lake.read(WEBHOOK_EVENTS, columns=["signature"]).column(0).to_pylist())


def wait_delivered(setup: Setup, timeout: float = 120) -> None:
    """Until the stream is drained, nothing is left to send, and the channels went quiet."""

    def settled() -> bool:
        before = [sum(c.received.values()) for c in setup.channels.values()]
        health = setup.health()
        if health["stream_lag"] or health["alert_backlog_batches"]:
            return False
        if any(r["state"] != "sent" for r in outbox.listing(setup.lake)):
            return False
        time.sleep(1.5)
        return before == [sum(c.received.values()) for c in setup.channels.values()]

    wait_until(settled, timeout, "follow delivering everything")


def test_follow_delivers_every_alert_once_and_sigterm_commits_everything(tmp_path: Path) -> None:
    start = int(time.time())
    events = swaps(600, start)
    setup = Setup(tmp_path, events, start, {n: c.start() for n, c in channels().items()})
    follow = start_follow(setup.env, setup.follow_port)
    try:
        post(setup.webhook_port, events[:300])
        # while it runs, the stages it replaces are refused (exit 75)
        for args in (["stream", "drain"], ["alerts", "deliver"], ["alerts", "run"]):
            refused = subprocess.run([str(ST), *args], env=setup.env, capture_output=True,
                                     text=True, timeout=120)  # fmt: skip
            assert refused.returncode == 75, (args, refused.stderr)
        post(setup.webhook_port, events[300:])
        wait_delivered(setup)
        metrics = httpx.get(f"http://127.0.0.1:{setup.follow_port}/metrics").text
        assert "st_follow_events_total 600" in metrics
        assert "st_follow_alert_seconds_count" in metrics
        code = stop(follow)
        out = follow.stdout.read().decode() if follow.stdout else ""
        assert code == 0
    finally:
        if follow.poll() is None:
            stop(follow)
        setup.close()
    (result,) = json.loads(out)
    assert result["events_written"] == 600 and result["alerts_sent"] > 0
    assert bronze_signatures(setup.lake) == Counter({e["signature"]: 1 for e in events})
    runs = setup.lake.read(RUNS).to_pylist()
    assert [r["status"] for r in runs if r["stage"] == "follow"] == ["succeeded"]
    # follow merged silver itself, with the silver stage's cursor: a batch run after it
    # finds nothing new, and a full re-parse of bronze gives the same legs
    merged = _silver_legs(setup.lake)
    again = subprocess.run([str(ST), "silver", "webhooks", "--format", "json"], env=setup.env,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)[0]["events"] == 0
    full = subprocess.run([str(ST), "silver", "webhooks", "--full-refresh"], env=setup.env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert full.returncode == 0, full.stderr
    assert _silver_legs(setup.lake) == merged and merged
    check_delivered(setup, expected_alerts(setup))


def _silver_legs(lake: Lake) -> set[tuple[Any, ...]]:
    columns = ["signature", "wallet", "leg", "direction", "token_address", "amount", "value_usd"]
    table = lake.read(WEBHOOK_SWAPS, columns=columns)
    return set(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


def test_a_storm_of_10000_events_loses_nothing_and_alerts_right(tmp_path: Path) -> None:
    start = int(time.time())
    events = swaps(10_000, start, spacing=1)
    setup = Setup(tmp_path, events, start, {n: c.start() for n, c in channels().items()})
    follow = start_follow(setup.env, setup.follow_port)
    try:
        parts = [events[i::8] for i in range(8)]
        posters = [
            threading.Thread(target=post, args=(setup.webhook_port, part, 100)) for part in parts
        ]
        began = time.monotonic()
        for t in posters:
            t.start()
        for t in posters:
            t.join()
        print(f"10,000 events acknowledged in {time.monotonic() - began:.2f} s")
        wait_delivered(setup, timeout=300)
        assert stop(follow) == 0
    finally:
        if follow.poll() is None:
            stop(follow)
        setup.close()
    assert bronze_signatures(setup.lake) == Counter({e["signature"]: 1 for e in events})
    check_delivered(setup, expected_alerts(setup))


def test_a_channel_down_for_a_while_does_not_stop_the_drain(tmp_path: Path) -> None:
    start = int(time.time())
    events = swaps(400, start)
    fakes = channels()
    fakes["webhook"].start()  # Telegram is down until later
    setup = Setup(tmp_path, events, start, fakes)
    follow = start_follow(setup.env, setup.follow_port)
    try:
        post(setup.webhook_port, events)
        wait_until(lambda: setup.health()["events"] == 400, 60, "every event in bronze")
        wait_until(lambda: sum(fakes["webhook"].received.values()) > 0, 60, "webhook alerts")
        # A send's outcome is committed with the outbox's next commit, after the send.
        wait_until(
            lambda: any(r["attempts"] for r in outbox.listing(setup.lake, channel="telegram")),
            60,
            "failed Telegram attempts recorded",
        )
        pending = outbox.listing(setup.lake, channel="telegram")
        assert pending and all(r["state"] != "sent" for r in pending)  # tried, failed, drained on
        fakes["telegram"].start()
        wait_delivered(setup)
        assert stop(follow) == 0
    finally:
        if follow.poll() is None:
            stop(follow)
        setup.close()
    check_delivered(setup, expected_alerts(setup))
    rows = outbox.listing(setup.lake, channel="telegram")
    assert pc.max([r["attempts"] for r in rows]).as_py() > 1


def test_sigkill_20_times_while_alerts_are_due_delivers_each_once_apart_from_counted(
    tmp_path: Path,
) -> None:
    """`st follow` SIGKILLed at random points 20 times while swaps keep arriving and alerts
    are due, then run to the end: every alert the batch path finds was delivered on every
    channel, and each one that arrived twice is one the outbox counted as uncertain."""
    start = int(time.time())
    events = swaps(1500, start)
    fakes = {"telegram": FakeChannel("telegram", delay=0.01).start(),
             "webhook": FakeChannel("webhook", delay=0.01).start()}  # fmt: skip
    setup = Setup(tmp_path, events, start, fakes, **{"alerts.batch_size": 10})
    rng = random.Random(14)
    poster = threading.Thread(target=_trickle, args=(setup.webhook_port, events, 40.0))
    poster.start()
    killed = 0
    try:
        for _ in range(20):
            follow = start_follow(setup.env, setup.follow_port)
            time.sleep(rng.uniform(0.0, 2.0))  # recovering, draining, evaluating, sending
            if follow.poll() is None:
                stop(follow, signal.SIGKILL)
                killed += 1
        poster.join()
        follow = start_follow(setup.env, setup.follow_port)
        wait_delivered(setup, timeout=300)
        assert stop(follow) == 0
    finally:
        poster.join()
        if follow.poll() is None:
            stop(follow)
        setup.close()
    assert killed == 20
    assert bronze_signatures(setup.lake) == Counter({e["signature"]: 1 for e in events})
    rows = outbox.listing(setup.lake)
    for name, fake in fakes.items():
        duplicates = sum(fake.received.values()) - sum(1 for r in rows if r["channel"] == name)
        counted = sum(r["uncertain_sends"] for r in rows if r["channel"] == name)
        print(f"{name}: {killed} kills, {duplicates} duplicates, {counted} counted uncertain")
    check_delivered(setup, expected_alerts(setup), crashes=True)


def _trickle(port: int, events: list[dict[str, Any]], seconds: float) -> None:
    """POST the events in arrays of 10, spread over about `seconds`."""
    chunks = [events[i : i + 10] for i in range(0, len(events), 10)]
    for chunk in chunks:
        post(port, chunk)
        time.sleep(seconds / len(chunks))


def test_follow_on_kafka_delivers_every_alert_once_across_a_sigkill(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """The same path on a real broker: swaps through the receiver into a Kafka topic,
    `st follow` killed once while they arrive, then run to the end."""
    start = int(time.time())
    events = swaps(600, start)
    topic = f"follow-{random.randrange(10**6)}"
    setup = Setup(
        tmp_path, events, start, {n: c.start() for n, c in channels().items()},
        **{"stream.backend": "kafka", "stream.bootstrap_servers": kafka_broker.bootstrap,
           "stream.topic": topic, "stream.group_id": f"follow-{topic}"},
    )  # fmt: skip
    follow = start_follow(setup.env, setup.follow_port)
    try:
        post(setup.webhook_port, events[:300])
        wait_until(lambda: setup.health()["events"] > 0, 60, "a first commit")
        stop(follow, signal.SIGKILL)
        post(setup.webhook_port, events[300:])
        follow = start_follow(setup.env, setup.follow_port)
        # the killed member keeps its partitions until its session times out (about 30 s)
        wait_until(lambda: len(bronze_signatures(setup.lake)) == 600, 180, "every event")
        wait_delivered(setup)
        assert stop(follow) == 0
    finally:
        if follow.poll() is None:
            stop(follow)
        setup.close()
    assert bronze_signatures(setup.lake) == Counter({e["signature"]: 1 for e in events})
    check_delivered(setup, expected_alerts(setup), crashes=True)


FLOW_COLUMNS = ["token_address", "window_start", "window_minutes", "buy_volume_usd",
                "sell_volume_usd", "net_flow_usd", "buy_count", "sell_count", "smart_buyers",
                "smart_sellers", "unpriced_buy_count", "unpriced_sell_count"]  # fmt: skip


def _flows(lake: Lake) -> dict[tuple[Any, Any], dict[str, Any]]:
    if not lake.exists(TOKEN_FLOWS):
        return {}
    rows = lake.read(TOKEN_FLOWS, columns=FLOW_COLUMNS).to_pylist()
    return {(r["token_address"], r["window_start"]): r for r in rows}


def _smart_legs(events: list[dict[str, Any]], smart: set[str], quotes: set[str]) -> int:
    """The smart wallets' buy and sell legs gold.token_flows counts."""
    return sum(
        1
        for e in events
        for leg in parse_swap(e).legs
        if leg.wallet in smart and leg.direction in ("buy", "sell")
        and leg.token_address not in quotes
    )  # fmt: skip


def test_flows_show_smart_buys_within_seconds_as_st_gold_flows_computes_them(
    tmp_path: Path,
) -> None:
    """Smart buys posted to the receiver are in gold.token_flows seconds later (the windows
    they touched, recomputed from silver), and `st gold flows` afterwards computes the same
    rows for those windows; /health says starting until follow is ready."""
    start = int(time.time())
    events = swaps(400, start)
    setup = Setup(
        tmp_path, events, start, {n: c.start() for n, c in channels().items()},
        **{"follow.flows_live_seconds": 1.0, "follow.silver_interval_seconds": 60.0},
    )  # fmt: skip
    config = load_config(setup.config).config
    quotes = set(config.pnl.quote_assets)
    smart = set(setup.lake.read(SMART_WALLETS, columns=["wallet_address"]).column(0).to_pylist())
    follow = start_follow(setup.env, setup.follow_port)
    try:
        first = setup.health()
        wait_until(lambda: setup.health()["ready"], 120, "follow ready")
        assert first["ready"] or (first["status"] == "starting" and first["reason"])
        delays = []
        for part in (events[:200], events[200:]):
            before = sum(r["buy_count"] + r["sell_count"] for r in _flows(setup.lake).values())
            wanted = before + _smart_legs(part, smart, quotes)
            acked = post(setup.webhook_port, part)

            def counted(wanted: int = wanted) -> bool:
                rows = _flows(setup.lake).values()
                return sum(r["buy_count"] + r["sell_count"] for r in rows) == wanted

            wait_until(counted, 60, "the smart legs in gold.token_flows")
            delays.append(time.time() - acked[-1])
        print(f"gold.token_flows had the smart legs {delays} s after the last 200")
        health = setup.health()
        assert health["flows_delay_seconds"]["commits"] >= 2, health
        wait_delivered(setup)
        assert stop(follow) == 0
    finally:
        if follow.poll() is None:
            stop(follow)
        setup.close()
    live = _flows(setup.lake)
    assert live and sum(r["buy_count"] for r in live.values())
    runs = setup.lake.read(RUNS).to_pylist()
    assert not [r for r in runs if r["stage"] == "gold.flows"]  # follow wrote every row
    done = subprocess.run([str(ST), "gold", "flows"], env=setup.env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    built = _flows(setup.lake)
    assert built.keys() == live.keys()
    for key, row in live.items():  # sums of floats: equal up to the order they were added
        for column, value in row.items():
            other = built[key][column]
            assert value == other or value == pytest.approx(other, rel=1e-12), (key, column)
