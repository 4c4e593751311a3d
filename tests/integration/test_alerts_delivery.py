"""Alerts through real loopback servers playing Telegram, Discord, Slack and a webhook.

The fake servers answer as their API does (429 bodies and headers, 5xx, late answers,
refused connections) and log every message they accepted, by alert; the outbox is a real
Delta table, and the deliverer is `st alerts deliver` in its own process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.lake.store import CommitMeta, Lake
from tests.harness import free_port, write_config

ST = Path(sys.executable).parent / "st"
BOT_TOKEN = "4242:fake-bot-token"
HMAC_KEY = "fake-hmac-key"
CHANNELS = ("telegram", "discord", "slack", "webhook")
META = CommitMeta("enqueue", "test", "h")
KEY = re.compile(r"\[(k\d+)\]")

# A fault is what the server does with request number n (0-based) of its channel:
# "ok", "429", "500", or "late" (accept it, then answer after the client's timeout).
Faults = Callable[[int], str]


class FakeChannel:
    """One channel's API on 127.0.0.1; `.received` counts accepted messages per alert key."""

    def __init__(self, name: str, faults: Faults | None = None, delay: float = 0.0) -> None:
        self.name = name
        self.port = free_port()
        self.faults = faults or (lambda n: "ok")
        self.delay = delay
        self.requests = 0
        self.received: Counter[str] = Counter()
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeChannel:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, http: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            n = self.requests
            self.requests += 1
        fault = self.faults(n)
        if self.delay:
            time.sleep(self.delay)
        if fault == "429":
            return self.rate_limited(http)
        if fault == "500":
            return _answer(http, 500, b'{"message": "internal error"}')
        key = self.accept(http, body)
        if key is None:
            return _answer(http, 400, b'{"message": "bad request"}')
        with self.lock:
            self.received[key] += 1
        if fault == "late":
            time.sleep(1.5)  # past the client's timeout: it arrived, the answer did not
        if self.name == "discord":
            return _answer(http, 204, b"")
        if self.name == "slack":
            return _answer(http, 200, b"ok", "text/plain")
        return _answer(http, 200, b'{"ok": true, "result": {"message_id": 1}}')

    def accept(self, http: BaseHTTPRequestHandler, body: bytes) -> str | None:
        """The alert key of a well-formed request to this API (its [kN], else its whole
        text); None when it is malformed."""
        doc = json.loads(body)
        if self.name == "telegram":
            if http.path != f"/bot{BOT_TOKEN}/sendMessage" or doc.get("chat_id") != "-1001":
                return None
            text = doc.get("text")
        elif self.name == "discord":
            text = doc.get("content")
        elif self.name == "slack":
            text = doc.get("text")
        else:
            header = http.headers.get("x-st-signature", "")
            parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
            signed = parts.get("t", "").encode() + b"." + body
            expected = hmac.new(HMAC_KEY.encode(), signed, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(parts.get("v1", ""), expected):
                with self.lock:
                    self.bad_signatures += 1
                return None
            if http.headers.get("idempotency-key") != doc.get("id"):
                return None
            text = doc.get("text")
        if not text:
            return None
        found = KEY.search(text)
        return found.group(1) if found else text

    def rate_limited(self, http: BaseHTTPRequestHandler) -> None:
        if self.name == "telegram":
            body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1}}  # fmt: skip
            return _answer(http, 429, json.dumps(body).encode())
        if self.name == "discord":
            body = {"message": "You are being rate limited.", "retry_after": 0.4, "global": False}
            return _answer(http, 429, json.dumps(body).encode(), headers={"Retry-After": "1"})
        return _answer(http, 429, b"rate_limited", "text/plain", {"Retry-After": "1"})


def _answer(
    http: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    try:
        http.send_response(status)
        http.send_header("content-type", content_type)
        http.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            http.send_header(k, v)
        http.end_headers()
        http.wfile.write(body)
    except OSError:  # the client gave up (a late answer)
        pass


def _setup(tmp_path: Path, fakes: dict[str, FakeChannel], **overrides: Any) -> dict[str, str]:
    config = write_config(
        tmp_path,
        **{
            "alerts.channels": list(fakes),
            "alerts.telegram.base_url": fakes["telegram"].url if "telegram" in fakes else "",
            "alerts.telegram.chat_id": "-1001",
            "alerts.webhook.url": f"{fakes['webhook'].url}/hook" if "webhook" in fakes else "",
            "alerts.timeout_seconds": 0.5,
            "alerts.backoff_base_seconds": 0.2,
            "alerts.backoff_max_seconds": 2.0,
            "alerts.telegram.rate_limit_rps": 0,
            "alerts.discord.rate_limit_rps": 0,
            "alerts.slack.rate_limit_rps": 0,
            "alerts.webhook.rate_limit_rps": 0,
            **overrides,
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.update(
        ST_CONFIG=str(config),
        ST_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        ST_ALERT_WEBHOOK_SECRET=HMAC_KEY,
        ST_DISCORD_WEBHOOK_URL=f"{fakes['discord'].url}/api/webhooks/1/tok" if "discord" in fakes else "",
        ST_SLACK_WEBHOOK_URL=f"{fakes['slack'].url}/services/T/B/x" if "slack" in fakes else "",
    )  # fmt: skip
    return env


def _enqueue(tmp_path: Path, count: int, channels: tuple[str, ...]) -> None:
    lake = Lake(str(tmp_path / "lake"))
    now = datetime.now(UTC)
    alerts = [
        Alert("wallet_buy", f"Token{i}", f"k{i}", f"[k{i}] smart wallet bought Token{i}", {}, now)
        for i in range(count)
    ]
    for start in range(0, count, 500):
        outbox.enqueue(lake, alerts[start : start + 500], channels, META, now)


def _rows(tmp_path: Path) -> list[dict[str, Any]]:
    return outbox.listing(Lake(str(tmp_path / "lake")))


def _st(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ST), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_every_alert_arrives_once_through_429s_5xx_late_answers_and_an_outage(
    tmp_path: Path,
) -> None:
    fakes = {
        "telegram": FakeChannel("telegram", lambda n: "429" if n % 7 == 3 else "ok"),
        "discord": FakeChannel("discord", lambda n: "500" if n < 4 or n % 9 == 5 else "ok"),
        "slack": FakeChannel("slack", lambda n: "429" if n in (2, 3) else "ok"),
        "webhook": FakeChannel("webhook", lambda n: "late" if n in (1, 6) else "ok"),
    }
    for name in ("telegram", "discord", "slack"):
        fakes[name].start()  # the webhook is down until later
    env = _setup(tmp_path, fakes, **{"alerts.batch_size": 5})
    _enqueue(tmp_path, 30, CHANNELS)
    try:
        delivering = subprocess.Popen(
            [str(ST), "alerts", "deliver", "--wait", "120", "--format", "json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not fakes["telegram"].received:  # the deliverer is sending
            assert time.monotonic() < deadline and delivering.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)
        fakes["webhook"].start()
        out, err = delivering.communicate(timeout=180)
        assert delivering.returncode == 0, err
    finally:
        for fake in fakes.values():
            fake.stop()
    (report,) = json.loads(out)
    rows = _rows(tmp_path)
    assert {r["state"] for r in rows} == {"sent"}, [r for r in rows if r["state"] != "sent"]
    expected = Counter({f"k{i}": 1 for i in range(30)})
    uncertain = Counter()
    for row in rows:
        uncertain[row["channel"]] += row["uncertain_sends"]
    for name in ("telegram", "discord", "slack"):
        assert fakes[name].received == expected, name
    # the late answers arrived, were retried, and each retry is counted as uncertain
    webhook = fakes["webhook"].received
    assert set(webhook) == set(expected) and fakes["webhook"].bad_signatures == 0
    assert sum(webhook.values()) - 30 <= uncertain["webhook"] == 2
    assert report["sent"] == 120 and report["rate_limited"] >= 4 and report["retried"] >= 5
    assert "ConnectError" in err  # the webhook was down at first


def test_a_channel_that_never_recovers_dead_letters_and_replay_resends(tmp_path: Path) -> None:
    slack = FakeChannel("slack", lambda n: "500").start()
    env = _setup(tmp_path, {"slack": slack}, **{"alerts.max_attempts": 3})
    _enqueue(tmp_path, 2, ("slack",))
    try:
        done = _st(env, "alerts", "deliver", "--wait", "30")
        assert done.returncode == 0, done.stderr
        rows = _rows(tmp_path)
        assert {r["state"] for r in rows} == {"dead"} and {r["attempts"] for r in rows} == {3}
        listed = _st(env, "alerts", "list", "--state", "dead", "--format", "json")
        assert {r["alert_id"] for r in json.loads(listed.stdout)} == {r["alert_id"] for r in rows}

        failed = _st(env, "alerts", "replay", rows[0]["alert_id"], "--format", "json")
        assert failed.returncode == 1  # still failing: not sent
        slack.faults = lambda n: "ok"
        replayed = _st(env, "alerts", "replay", rows[0]["alert_id"], "--format", "json")
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)[0]["state"] == "sent"
        assert slack.received == Counter({rows[0]["alert_key"]: 1})
    finally:
        slack.stop()


def test_alerts_test_exit_code_says_whether_the_message_arrived(tmp_path: Path) -> None:
    fakes = {name: FakeChannel(name).start() for name in CHANNELS}
    env = _setup(tmp_path, fakes)
    try:
        for name in CHANNELS:
            done = _st(env, "alerts", "test", name, "--text", "[k1] hello")
            assert done.returncode == 0, (name, done.stderr)
            assert fakes[name].received == Counter({"k1": 1}), name
        fakes["discord"].stop()
        down = _st(env, "alerts", "test", "discord", "--text", "[k1] hello")
        assert down.returncode == 1 and "not delivered" in down.stderr
        assert "fake-bot-token" not in down.stderr
    finally:
        for fake in fakes.values():
            fake.stop()
    assert not (tmp_path / "lake" / "ops" / "alerts").exists()  # a test is not an alert


def test_sigkill_of_the_deliverer_loses_nothing_and_counts_every_possible_duplicate(
    tmp_path: Path,
) -> None:
    """20 SIGKILLs of `st alerts deliver` while it sends: every alert arrives, and every
    alert that arrived twice is one the outbox counted as uncertain."""
    count, kills = 400, 20
    fakes = {
        "telegram": FakeChannel("telegram", delay=0.01).start(),
        "webhook": FakeChannel("webhook", delay=0.01).start(),
    }
    env = _setup(tmp_path, fakes, **{"alerts.batch_size": 10})
    _enqueue(tmp_path, count, tuple(fakes))
    rng = random.Random(14)
    killed = 0
    try:
        for _ in range(kills):
            before = sum(f.requests for f in fakes.values())
            proc = subprocess.Popen(
                [str(ST), "alerts", "deliver"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while sum(f.requests for f in fakes.values()) == before and proc.poll() is None:
                assert time.monotonic() < deadline, "the deliverer never sent anything"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.6))  # somewhere in a round: claim, sends, outcome
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait(30)
        done = _st(env, "alerts", "deliver", "--wait", "60")
        assert done.returncode == 0, done.stderr
    finally:
        for fake in fakes.values():
            fake.stop()
    rows = _rows(tmp_path)
    assert killed >= 15, "raise `count`: the deliverer finished before most kills"
    assert {r["state"] for r in rows} == {"sent"}
    expected = {f"k{i}" for i in range(count)}
    for name, fake in fakes.items():
        assert set(fake.received) == expected, name  # nothing lost
        duplicates = sum(fake.received.values()) - count
        counted = sum(r["uncertain_sends"] for r in rows if r["channel"] == name)
        print(f"{name}: {killed} kills, {duplicates} duplicates, {counted} counted uncertain")
        assert duplicates <= counted, (name, duplicates, counted)
        # every alert received twice is one of the counted ones
        twice = {k for k, n in fake.received.items() if n > 1}
        uncertain = {r["alert_key"] for r in rows if r["channel"] == name and r["uncertain_sends"]}
        assert twice <= uncertain, name
    assert fakes["webhook"].bad_signatures == 0
