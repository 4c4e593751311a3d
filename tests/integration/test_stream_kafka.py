"""The stream path on a real Kafka broker: drain under SIGKILL, broker down, broker outage."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from smarttrader_cli.config import load_config
from smarttrader_cli.stream.kafka_backend import kafka_end_offsets
from tests.harness import KafkaBroker, free_port, wait_until, write_config
from tests.stream_support import (
    event_signatures,
    helius_events,
    outbound,
    post_through_an_outage,
    produce,
)

ST = Path(sys.executable).parent / "st"
TOKEN = "integration-token"


def st_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["ST_CONFIG"] = str(config)
    env["ST_WEBHOOK_AUTH_TOKEN"] = TOKEN
    return env


def kafka_config(tmp_path: Path, broker: KafkaBroker, **extra: Any) -> Path:
    topic = f"helius-{tmp_path.name[-20:]}-{random.randrange(10**6)}".replace("_", "-")
    return write_config(
        tmp_path,
        {
            "stream.backend": "kafka",
            "stream.bootstrap_servers": broker.bootstrap,
            "stream.topic": topic,
            "stream.group_id": f"drain-{topic}",
            "webhook.port": free_port(),
            **extra,
        },
    )


def drain(config: Path, timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run(
        [str(ST), "stream", "drain", "--format", "json"],
        env=st_env(config),
        capture_output=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return dict(orjson.loads(proc.stdout)[0])


def test_kafka_drain_is_exactly_once_under_repeated_sigkill(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    config = kafka_config(tmp_path, kafka_broker, **{"stream.batch_size": 2000})
    events = helius_events(100_000)
    values = outbound(events)
    values += values[:300]  # redeliveries
    produce(config, values, chunk=5000)
    rng = random.Random(7)
    kills = 0
    while kills < 20:
        proc = subprocess.Popen(
            [str(ST), "stream", "drain"],
            env=st_env(config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 5.0))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills == 20
    assert drain(config)["caught_up"]
    counts = Counter(event_signatures(config))
    assert len(counts) == 100_000 and max(counts.values()) == 1
    assert set(counts) == {e["signature"] for e in events}


class Server:
    """`st webhook serve` in a subprocess."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = load_config(config).config.webhook.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(ST), "webhook", "serve"],
            env=st_env(config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_until(self._healthy, 60, "webhook server", self.proc)

    def _healthy(self) -> bool:
        return httpx.get(f"{self.url}/health", timeout=1).status_code == 200

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/webhooks/status", timeout=5).json())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        log = self.proc.stderr.read().decode() if self.proc.stderr else ""
        # uvicorn re-raises SIGTERM once its graceful shutdown is complete
        assert self.proc.returncode in (0, -signal.SIGTERM), log
        assert "producer flushed" in log


@pytest.fixture
def server_factory() -> Iterator[Any]:
    servers: list[Server] = []

    def make(config: Path) -> Server:
        servers.append(Server(config))
        return servers[-1]

    yield make
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def post(url: str, events: list[dict[str, Any]], timeout: float = 30) -> int:
    r = httpx.post(
        f"{url}/webhooks", content=orjson.dumps(events), headers={"Authorization": TOKEN},
        timeout=timeout,
    )  # fmt: skip
    return r.status_code


def topic_size(config: Path) -> int:
    return sum(kafka_end_offsets(load_config(config).config.stream).values())


def test_broker_down_at_start_spools_then_publishes(
    tmp_path: Path, own_kafka_broker: KafkaBroker, server_factory: Any
) -> None:
    config = kafka_config(tmp_path, own_kafka_broker, **{"stream.producer_timeout_seconds": 2})
    own_kafka_broker.stop()
    server = server_factory(config)
    events = helius_events(50)
    for i in range(0, 50, 5):
        assert post(server.url, events[i : i + 5]) == 200
    status = server.status()
    assert status["broker"] == "down" and status["spool_depth"] == 50
    own_kafka_broker.start()
    wait_until(lambda: server.status()["spool_depth"] == 0, 90, "spool re-published")
    assert server.status()["broker"] == "up"
    server.stop()
    assert topic_size(config) >= 50
    summary = drain(config)
    assert summary["events_written"] == 50, summary
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_outage_under_load_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, own_kafka_broker: KafkaBroker, server_factory: Any, how: str
) -> None:
    config = kafka_config(tmp_path, own_kafka_broker, **{"stream.producer_timeout_seconds": 2})
    server = server_factory(config)
    events = helius_events(6000)
    acked, failed = post_through_an_outage(server.url, TOKEN, events, own_kafka_broker, how)
    wait_until(lambda: server.status()["spool_depth"] == 0, 120, "spool re-published")
    status = server.status()
    server.stop()
    assert not failed, Counter(failed)
    assert status["spooled"] > 0  # the outage really happened under load
    assert len(acked) == len(events)
    drain(config)
    counts = Counter(event_signatures(config))
    assert set(acked) <= set(counts)  # every 200 reached the topic and the table
    assert max(counts.values()) == 1  # and none twice


def test_drain_is_not_caught_up_while_another_member_holds_partitions(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """A drain given only some partitions waits for the rest instead of calling it done."""
    from confluent_kafka import Consumer

    config = kafka_config(tmp_path, kafka_broker)
    stream = load_config(config).config.stream
    produce(config, outbound(helius_events(3_000)))
    # A live group member (as a killed drain is until its session times out) holding a share.
    holder = Consumer(
        {
            "bootstrap.servers": stream.bootstrap_servers,
            "group.id": stream.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
            "session.timeout.ms": 6000,
        }
    )
    holder.subscribe([stream.topic])
    stop, assigned = threading.Event(), threading.Event()

    def keep_polling() -> None:  # the one thread that touches the holder
        while not stop.is_set():
            holder.poll(0.1)
            if holder.assignment():
                assigned.set()
        holder.close()  # leaves the group: the drain is then given every partition

    thread = threading.Thread(target=keep_polling, daemon=True)
    thread.start()
    assert assigned.wait(timeout=60), "the holder was never assigned a partition"
    draining = subprocess.Popen(
        [str(ST), "stream", "drain", "--format", "json"],
        env=st_env(config),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(8)  # the drain has joined, got its share and drained it by now
    assert draining.poll() is None, "drain ended while partitions were held elsewhere"
    stop.set()
    thread.join(timeout=30)
    out, err = draining.communicate(timeout=120)
    assert draining.returncode == 0, err.decode()
    result = orjson.loads(out)[0]
    assert result["caught_up"], result
    counts = Counter(event_signatures(config))
    assert len(counts) == 3_000 and max(counts.values()) == 1


def test_status_doctor_and_cleanup_ask_the_kafka_backend(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    """Status, doctor and cleanup go through stream/backend.py's Backend, not a name check."""
    config = kafka_config(tmp_path, kafka_broker)
    produce(config, outbound(helius_events(200)))
    assert drain(config)["events_written"] == 200

    def st_json(*args: str) -> list[dict[str, Any]]:
        proc = subprocess.run(
            [str(ST), *args, "--format", "json"], env=st_env(config), capture_output=True
        )
        return list(orjson.loads(proc.stdout))

    status = st_json("stream", "status")
    assert sum(r["committed_offset"] for r in status) == topic_size(config) == 200
    assert {r["lag"] for r in status} == {0}
    broker = next(r for r in st_json("doctor") if r["check"] == "broker")
    assert broker["status"] == "ok" and "broker(s), topic" in broker["detail"], broker
    removed = st_json("ops", "cleanup", "--dry-run")
    assert not [r for r in removed if r["kind"] == "stream"]  # the broker's retention applies
