"""Helpers for the stream tests: simulated Helius events, producing them, reading the lake."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WEBHOOK_DEAD_LETTERS, WEBHOOK_EVENTS
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stream.backend import OutboundEvent, open_producer


def helius_events(
    count: int,
    seed: int = 7,
    start_time: int = 1_760_000_000,
    settings: SimSettings | None = None,
) -> list[dict[str, Any]]:
    """`count` simulated enhanced SWAP events with distinct signatures.

    With `settings`, the events come from that market (its wallets, tokens and seed).
    """
    market = Market(settings or SimSettings(seed=seed))
    return enhanced_swaps(market, count, start_time=start_time)


def outbound(events: list[dict[str, Any]]) -> list[OutboundEvent]:
    now = int(time.time() * 1e6)
    return [OutboundEvent(e["signature"].encode(), orjson.dumps(e), now) for e in events]


def produce(config_path: Path, values: list[OutboundEvent], chunk: int = 2000) -> None:
    """Publish through the configured backend's producer (everything must be acknowledged)."""
    producer = open_producer(load_config(config_path).config)
    try:
        for i in range(0, len(values), chunk):
            part = values[i : i + chunk]
            assert all(producer.publish(part, timeout=30.0)), "publish not acknowledged"
    finally:
        producer.close()


def with_faults(
    events: list[dict[str, Any]], duplicates: int, bad: int, seed: int = 1
) -> tuple[list[OutboundEvent], list[bytes]]:
    """The events plus re-deliveries of some and some messages that are no event at all."""
    rng = random.Random(seed)
    values = outbound(events)
    extra = [values[rng.randrange(len(values))] for _ in range(duplicates)]
    junk = [
        b"not json",
        b"[1, 2]",
        b'{"slot": 5}',
        b'{"signature": 12}',
        b'{"signature": "x", "slot": "7"}',
    ]
    bad_values = [junk[i % len(junk)] + b" " * (i // len(junk)) for i in range(bad)]
    bad_events = [OutboundEvent(f"bad-{i}".encode(), v, 0) for i, v in enumerate(bad_values)]
    mixed = values + extra + bad_events
    rng.shuffle(mixed)
    return mixed, bad_values


def lake_for(config_path: Path) -> Lake:
    return Lake.from_config(load_config(config_path))


def event_signatures(config_path: Path) -> list[str]:
    """Every signature row of bronze.webhook_events (duplicates included, if any)."""
    lake = lake_for(config_path)
    return lake.read(WEBHOOK_EVENTS, columns=["signature"]).column("signature").to_pylist()


def committed_offsets(config_path: Path) -> dict[int, int | None]:
    """Per partition of the local log: the last offset committed to the table (its txn)."""
    from smarttrader_cli.stream.local_log import LocalLog
    from smarttrader_cli.stream.offsets import StreamOffsets

    stream = load_config(config_path).config.stream
    log = LocalLog(stream)
    assert log.identity is not None, "the local log has no stream id"
    keys = StreamOffsets(stream.group_id, stream.topic, log.identity)
    lake = lake_for(config_path)
    return {
        p: lake.app_transaction_version(WEBHOOK_EVENTS, keys.app_id(p))
        for p in range(log.partitions)
    }


def dead_letter_keys(config_path: Path) -> list[tuple[int, int]]:
    lake = lake_for(config_path)
    table = lake.read(WEBHOOK_DEAD_LETTERS, columns=["stream_partition", "stream_offset"])
    return list(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


def post_through_an_outage(
    url: str, token: str, events: list[dict[str, Any]], broker: Any, fault: str
) -> tuple[list[str], list[int]]:
    """Post one-event webhooks from 4 clients; 3 s in, stop or kill the broker for 10 s.

    Returns the signatures answered 200 and the other status codes seen.
    """
    import threading

    import httpx

    acked: list[str] = []
    failed: list[int] = []

    def load(part: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=30, headers={"Authorization": token}) as client:
            for event in part:
                r = client.post(f"{url}/webhooks", content=orjson.dumps([event]))
                if r.status_code == 200:
                    acked.append(event["signature"])
                else:
                    failed.append(r.status_code)
                time.sleep(0.004)

    threads = [threading.Thread(target=load, args=(events[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    broker.stop() if fault == "stop" else broker.kill()
    time.sleep(10)
    broker.start()
    for t in threads:
        t.join(300)
    return acked, failed


def append_bronze(
    lake: Lake, events: list[dict[str, Any]], ingested_at: datetime | None = None
) -> int:
    """Commit `events` to bronze.webhook_events as one drain would (no stream); the version."""
    from smarttrader_cli.lake.store import CommitMeta
    from smarttrader_cli.stream.backend import StreamMessage
    from smarttrader_cli.stream.batch import finish, prepare

    now = int(time.time() * 1e6)
    messages = [
        StreamMessage(0, i, e["signature"].encode(), orjson.dumps(e), now)
        for i, e in enumerate(events)
    ]
    rows = finish(prepare(messages).events, ingested_at or datetime.now(UTC), "bench-drain")
    return lake.append(WEBHOOK_EVENTS, rows, CommitMeta("bench-drain", "stream.drain", "h"))
