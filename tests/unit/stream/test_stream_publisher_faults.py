"""The publisher's promise under a misbehaving producer: every event whose request was
answered reached the broker, directly or through the spool.

The chaos producer reports late (after the guard timer too), not at all (as the reports of
a replaced producer are lost), refuses some messages at once (queue full), and the broker
goes down and comes back while requests keep arriving. The polled one reports only when
polled, as librdkafka does.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from smarttrader_cli.config import load_config
from smarttrader_cli.errors import ConfigError
from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.kafka_backend import await_reports, producer_settings
from smarttrader_cli.stream.publisher import NotDurableError, Publisher
from smarttrader_cli.stream.server import new_metrics
from smarttrader_cli.stream.spool import Spool
from tests.harness import write_config


class ChaosProducer:
    """`send`/`publish` with random report delays, lost reports and refusals while flaky."""

    ready = True

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.up = True
        self.flaky = True
        self.broker: set[bytes] = set()  # what the broker holds
        self._lock = threading.Lock()

    def send(self, events: Sequence[OutboundEvent], report: Callable[[int, bool], None]) -> None:
        for i, event in enumerate(events):
            if self.flaky and self.rng.random() < 0.02:
                report(i, False)  # queue full
                continue
            up = self.up
            lost = self.flaky and self.rng.random() < 0.02  # its producer was replaced

            def deliver(i: int = i, event: OutboundEvent = event, up: bool = up,
                        lost: bool = lost) -> None:  # fmt: skip
                if up:  # written, whether or not the report says so
                    with self._lock:
                        self.broker.add(event.key)
                if not lost:
                    report(i, up and self.up)

            late = 0.3 if self.flaky else 0.02  # past the 0.1 s ack wait while flaky
            timer = threading.Timer(self.rng.random() * late, deliver)
            timer.daemon = True
            timer.start()

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        return await_reports(self.send, events, timeout)

    def describe(self) -> str:
        return "chaos"

    def close(self, timeout: float = 10.0) -> None:
        pass


@pytest.mark.parametrize("seed", [1, 2])
def test_every_answered_event_reaches_the_broker_whatever_the_reports_do(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    producer = ChaosProducer(rng)
    spool = Spool(tmp_path / "spool")
    acked: list[bytes] = []

    async def run() -> None:
        publisher = Publisher(producer, spool, new_metrics(), producer_timeout=0.1,
                              dedupe_window=600)  # fmt: skip
        publisher.start()

        async def client(k: int) -> None:
            for j in range(200):
                event = OutboundEvent(f"sig-{k}-{j}".encode(), b"{}", 1)
                try:
                    await publisher.submit([event])
                    acked.append(event.key)
                except NotDurableError:
                    pass
                await asyncio.sleep(rng.random() * 0.002)

        async def outages() -> None:
            for _ in range(6):
                await asyncio.sleep(rng.random() * 0.3)
                producer.up = not producer.up
            producer.up, producer.flaky = True, False

        await asyncio.gather(*(client(k) for k in range(6)), outages())
        for _ in range(1200):
            if not spool.depth:
                break
            await asyncio.sleep(0.05)
        await publisher.close()

    asyncio.run(run())
    assert len(acked) == 1200  # the spool took what the broker did not acknowledge
    assert Spool(tmp_path / "spool").depth == 0
    assert [k for k in acked if k not in producer.broker] == []


class PolledProducer:
    """Reports like librdkafka's: only when polled, in the thread that polls."""

    ready = True

    def __init__(self) -> None:
        self.due: list[Callable[[], None]] = []
        self.report_threads: set[int] = set()
        self._lock = threading.Lock()

    def send(self, events: Sequence[OutboundEvent], report: Callable[[int, bool], None]) -> None:
        with self._lock:
            self.due += [lambda i=i: report(i, True) for i in range(len(events))]

    def serve_reports(self, timeout: float = 0.0) -> None:
        with self._lock:
            due, self.due = self.due, []
        for deliver in due:
            self.report_threads.add(threading.get_ident())
            deliver()

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        return await_reports(self.send, events, timeout, self.serve_reports)

    def describe(self) -> str:
        return "polled"

    def close(self, timeout: float = 10.0) -> None:
        self.serve_reports()


def test_reports_served_only_when_polled_settle_requests_on_the_event_loop(
    tmp_path: Path,
) -> None:
    """No thread of the producer delivers the reports: the server's loop polls for them,
    so the requests they settle need no hand-over from another thread."""
    producer = PolledProducer()
    spool = Spool(tmp_path / "spool")
    loop_threads: list[int] = []

    async def run() -> list[object]:
        loop_threads.append(threading.get_ident())
        publisher = Publisher(producer, spool, new_metrics(), producer_timeout=5,
                              dedupe_window=600)  # fmt: skip
        publisher.start()
        requests = (
            publisher.submit([OutboundEvent(f"sig-{k}-{j}".encode(), b"{}", 1) for j in range(3)])
            for k in range(50)
        )
        outcomes = await asyncio.wait_for(asyncio.gather(*requests), 5)
        await publisher.close()
        return list(outcomes)

    outcomes = asyncio.run(run())
    assert len(outcomes) == 50
    assert spool.depth == 0  # acknowledged, not spooled after a timeout
    assert producer.report_threads == set(loop_threads)


def test_the_producer_keeps_acks_all_and_idempotence_whatever_its_tuning(
    tmp_path: Path,
) -> None:
    tuned = {
        "stream.producer_linger_ms": 7,
        "stream.producer_max_in_flight": 5,
        "stream.producer_compression": "zstd",
    }
    settings = producer_settings(load_config(write_config(tmp_path, tuned)).config.stream)
    assert settings["acks"] == "all" and settings["enable.idempotence"] is True
    assert settings["linger.ms"] == 7
    assert settings["max.in.flight.requests.per.connection"] == 5
    assert settings["compression.type"] == "zstd"
    # librdkafka refuses idempotence past 5 requests in flight: refused up front instead
    with pytest.raises(ConfigError, match="producer_max_in_flight"):
        load_config(write_config(tmp_path, {"stream.producer_max_in_flight": 6}))
