"""Stored offsets on a real Kafka broker: keyed by topic id, refused past the topic's end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient

from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.kafka_backend import ensure_topic, topic_identity
from tests.harness import KafkaBroker
from tests.integration.test_stream_kafka import kafka_config
from tests.stream_support import event_signatures, helius_events, lake_for, outbound, produce

ST = Path(sys.executable).parent / "st"


def drain(config: Path, *args: str) -> tuple[int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["ST_CONFIG"] = str(config)
    proc = subprocess.run(
        [str(ST), "stream", "drain", "--format", "json", *args],
        env=env,
        capture_output=True,
        timeout=300,
    )
    if proc.returncode:
        return proc.returncode, proc.stderr.decode()
    return 0, orjson.loads(proc.stdout)[0]


def recreate_topic(config: Path) -> None:
    stream = load_config(config).config.stream
    admin = AdminClient({"bootstrap.servers": stream.bootstrap_servers})
    admin.delete_topics([stream.topic], operation_timeout=30)[stream.topic].result(30)
    deadline = time.monotonic() + 60
    while stream.topic in admin.list_topics(timeout=10).topics:
        assert time.monotonic() < deadline, "topic not deleted"
        time.sleep(0.5)
    while True:  # the broker may still be finishing the deletion
        try:
            ensure_topic(stream, admin)
            return
        except Exception:
            assert time.monotonic() < deadline, "topic not re-created"
            time.sleep(0.5)


def test_a_recreated_topic_is_drained_from_its_start(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    config = kafka_config(tmp_path, kafka_broker)
    produce(config, outbound(helius_events(90)))
    stream = load_config(config).config.stream
    first_id = topic_identity(stream)
    assert first_id.startswith("kafka-")
    code, summary = drain(config)
    assert code == 0 and summary["events_written"] == 90, summary
    recreate_topic(config)
    assert topic_identity(stream) != first_id
    produce(config, outbound(helius_events(40, seed=99, start_time=1_780_000_000)))
    code, summary = drain(config)
    assert code == 0, summary
    assert summary["events_written"] == 40 and summary["lag"] == 0
    assert len(set(event_signatures(config))) == 130


def test_offsets_past_the_topics_end_stop_the_drain_until_reset(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    config = kafka_config(tmp_path, kafka_broker)
    loaded = load_config(config).config
    lake = lake_for(config)
    lake.ensure_table(WEBHOOK_EVENTS)
    legacy = [(f"{loaded.stream.group_id}-{p}", 999) for p in range(loaded.stream.partitions)]
    empty = WEBHOOK_EVENTS.schema.empty_table()
    lake.append(WEBHOOK_EVENTS, empty, CommitMeta("old-st", "stream.drain", "h"), legacy)
    produce(config, outbound(helius_events(30)))
    code, output = drain(config)
    assert code == 1, output
    assert "past its end" in output and "--reset-offsets" in output
    code, summary = drain(config, "--reset-offsets")
    assert code == 0, summary
    assert summary["events_written"] == 30 and summary["caught_up"]
