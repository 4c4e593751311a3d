"""The publisher's promise under a misbehaving producer: every event whose request was
answered reached the broker, directly or through the spool.

The fake producer reports late (after the guard timer too), not at all (as the reports of
a replaced producer are lost), refuses some messages at once (queue full), and the broker
goes down and comes back while requests keep arriving.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.kafka_backend import await_reports
from smarttrader_cli.stream.publisher import NotDurableError, Publisher
from smarttrader_cli.stream.server import new_metrics
from smarttrader_cli.stream.spool import Spool


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
