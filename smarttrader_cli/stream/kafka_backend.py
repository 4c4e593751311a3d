"""The `kafka` backend: confluent-kafka against Apache Kafka or Redpanda.

Producer: `acks=all`, idempotent, one message per event (key = signature, value = the
event JSON, header `received_at_us`); `message.timeout.ms` equals the server's ack wait,
so a message we spool is also one librdkafka stops retrying. Batching is tuned by
`stream.producer_linger_ms`, `producer_max_in_flight` and `producer_compression`
(docs/performance.md, "Receiver on Kafka"). The topic's admin helpers are here too; the
drain's consumer is kafka_consumer.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import BrokerUnavailableError
from smarttrader_cli.stream.backend import Consumer, OutboundEvent

if TYPE_CHECKING:
    from pathlib import Path

    from smarttrader_cli.config.schema import StreamConfig
    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.stream.kafka")

RECEIVED_HEADER = "received_at_us"


class _QuietLog:
    """librdkafka's log lines (connection refused while the broker is away, ...) at DEBUG:
    broker state is reported through the webhook status and metrics instead."""

    def __init__(self) -> None:
        self._log = logging.getLogger("st.stream.rdkafka")

    def log(self, level: int, msg: str, *args: Any) -> None:
        self._log.debug(msg, *args)


_RDKAFKA_LOG = _QuietLog()


def client_config(config: StreamConfig) -> dict[str, Any]:
    """Settings every client shares; librdkafka's own log goes to Python logging."""
    return {
        "bootstrap.servers": config.bootstrap_servers,
        "logger": _RDKAFKA_LOG,
        "reconnect.backoff.max.ms": 1000,
        "socket.nagle.disable": True,  # small acks=all round trips, not 40 ms Nagle stalls
    }


def producer_settings(config: StreamConfig) -> dict[str, Any]:
    """The receiver's producer: acks=all and idempotent whatever the tuning keys say."""
    timeout_ms = max(1000, int(config.producer_timeout_seconds * 1000))
    return {
        **client_config(config),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": config.producer_linger_ms,
        "max.in.flight.requests.per.connection": config.producer_max_in_flight,
        "message.timeout.ms": timeout_ms,
        "socket.timeout.ms": min(timeout_ms, 10000),
        "compression.type": config.producer_compression,
    }


def ensure_topic(config: StreamConfig, admin: Any = None, timeout: float = 10.0) -> None:
    """Create the topic with `stream.partitions` partitions if it does not exist."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = admin or AdminClient(client_config(config))
    topics = admin.list_topics(timeout=timeout).topics
    if config.topic in topics:
        return
    futures = admin.create_topics(
        [NewTopic(config.topic, num_partitions=config.partitions, replication_factor=-1)],
        request_timeout=timeout,
    )
    # The future's error can be a bare KafkaError, which `result()` cannot raise (the
    # receiver and a drain creating the topic at once: one of them gets "already exists").
    error = futures[config.topic].exception(timeout)
    if error is None:
        log.info("created topic %s with %d partitions", config.topic, config.partitions)
    elif "TOPIC_ALREADY_EXISTS" not in str(error):
        raise error if isinstance(error, BaseException) else KafkaException(error)


def topic_identity(config: StreamConfig, admin: Any = None, timeout: float = 10.0) -> str:
    """`kafka-<topic id>`: a topic deleted and created again under its name gets a new id.
    `kafka` alone where the broker reports no topic id (the name is in the offsets' id)."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient

    from smarttrader_cli.errors import StError

    admin = admin or AdminClient(client_config(config))
    deadline = time.monotonic() + timeout
    while True:
        futures = admin.describe_topics(TopicCollection([config.topic]), request_timeout=timeout)
        try:
            description = futures[config.topic].result(timeout)
            break
        except Exception as exc:
            # A topic created a moment ago may not be in the broker's metadata yet.
            if "UNKNOWN_TOPIC_OR_PART" in str(exc) and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            raise StError(f"cannot describe kafka topic {config.topic}: {exc}") from exc
    topic_id = description.topic_id
    if topic_id is None or not (
        topic_id.get_most_significant_bits() or topic_id.get_least_significant_bits()
    ):
        return "kafka"
    return f"kafka-{topic_id}"


# `send(events, report)`: queues events and calls `report(index, acknowledged)` once per event.
Sender = Callable[[Sequence[OutboundEvent], Callable[[int, bool], None]], None]


def await_reports(
    send: Sender,
    events: Sequence[OutboundEvent],
    timeout: float,
    serve: Callable[[float], object] | None = None,
) -> list[bool]:
    """Send, then wait up to `timeout` for every report: the acknowledged flag per event
    (False for one not reported in time). `serve(seconds)` is called while waiting when
    the reports arrive only through it (librdkafka's poll), else the wait is a plain one."""
    results = [False] * len(events)
    done = threading.Event()
    remaining = [len(events)]
    guard = threading.Lock()

    def report(index: int, ok: bool) -> None:
        with guard:
            results[index] = ok
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    if events:
        send(events, report)
        deadline = time.monotonic() + timeout
        while not done.is_set() and (left := deadline - time.monotonic()) > 0:
            if serve is None:
                done.wait(left)
            else:
                serve(min(left, 0.05))
    with guard:
        return list(results)


class KafkaProducer:
    """Publishes with acks=all and idempotence.

    No thread of its own serves the delivery reports: whoever waits for them polls. A
    blocking `publish` polls until its reports are in; the webhook server's event loop
    calls `serve_reports` (publisher.py), so the reports of `send` run on the loop, where
    the requests they settle wait, instead of on a thread that takes the GIL from the loop
    once per message.
    """

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self._producer: Any = None
        self._fatal = False
        self._lock = threading.Lock()
        self._topic_ready = False
        self._admin_client: Any = None
        self._make()

    def _make(self) -> None:
        from confluent_kafka import Producer

        self._producer = Producer({**producer_settings(self.config), "error_cb": self._on_error})
        self._fatal = False

    def _admin(self) -> Any:
        from confluent_kafka.admin import AdminClient

        if self._admin_client is None:
            self._admin_client = AdminClient(client_config(self.config))
        return self._admin_client

    def _on_error(self, err: Any) -> None:
        if err.fatal():
            log.error("kafka producer fatal error (will recreate it): %s", err)
            self._fatal = True
        else:
            log.debug("kafka producer: %s", err)

    def serve_reports(self, timeout: float = 0.0) -> None:
        """Run the delivery reports (and error callbacks) that are due, waiting up to
        `timeout` for the first; the reports of `send` run in the calling thread."""
        self._producer.poll(timeout)

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        """True per event the broker acknowledged within `timeout`."""
        with self._lock:
            if self._fatal:
                self._producer.flush(0)
                self._make()
            if not self._topic_ready:
                try:
                    ensure_topic(self.config, self._admin(), timeout=timeout)
                    self._topic_ready = True
                except Exception as exc:  # broker unreachable: nothing can be acknowledged
                    log.warning("cannot reach kafka to check topic %s: %s", self.config.topic, exc)
                    return [False] * len(events)
        return self._publish(events, timeout)  # produce() is thread-safe: rounds overlap

    @property
    def ready(self) -> bool:
        """True once the topic is known to exist and the producer is usable: `send` may be used."""
        return self._topic_ready and not self._fatal

    def send(self, events: Sequence[OutboundEvent], report: Callable[[int, bool], None]) -> None:
        """Queue events without waiting; `report(index, acknowledged)` follows for each one
        within `message.timeout.ms` (at once if the queue is full), from whichever thread
        serves the reports (`serve_reports`, or a blocking `publish` waiting for its own)."""
        producer = self._producer
        topic = self.config.topic
        for i, event in enumerate(events):
            try:
                producer.produce(
                    topic,
                    value=event.value,
                    key=event.key,
                    headers=[(RECEIVED_HEADER, str(event.received_at_us).encode())],
                    timestamp=event.received_at_us // 1000,
                    on_delivery=lambda err, _msg, i=i: report(i, err is None),
                )
            except BufferError:
                report(i, False)

    def _publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        return await_reports(self.send, events, timeout, self.serve_reports)

    def describe(self) -> str:
        return f"kafka {self.config.bootstrap_servers} topic {self.config.topic}"

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop."""
        if self._producer is not None:
            left = self._producer.flush(timeout)
            if left:
                log.warning("%d messages were still unacknowledged at shutdown", left)


class KafkaBackend:
    """The kafka backend's answers for status, `st doctor` and `st ops cleanup`."""

    needs_spool = True  # the broker may be away: the webhook server spools meanwhile

    def __init__(self, config: StreamConfig) -> None:
        self.config = config

    def producer(self) -> KafkaProducer:
        return KafkaProducer(self.config)

    def consumer(self) -> Consumer:
        from smarttrader_cli.stream.kafka_consumer import KafkaConsumer

        return KafkaConsumer(self.config)

    def identity(self) -> str | None:
        return topic_identity(self.config)

    def end_offsets(self) -> dict[int, int]:
        return kafka_end_offsets(self.config)

    def health(self) -> str:
        """The cluster answers a metadata request (within seconds)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        servers = self.config.bootstrap_servers
        admin = AdminClient({**client_config(self.config), "socket.timeout.ms": 3000})
        try:
            metadata = admin.list_topics(timeout=5)
        except KafkaException as exc:
            raise BrokerUnavailableError(f"kafka {servers}: {exc}") from exc
        topic = self.config.topic
        if topic in metadata.topics:
            about = f"topic {topic} has {len(metadata.topics[topic].partitions)} partitions"
        else:
            about = f"topic {topic} not created yet (the drain or server creates it)"
        return f"kafka {servers}: {len(metadata.brokers)} broker(s), {about}"

    def retention_candidates(self, lake: Lake) -> list[Path]:
        """None: the broker's own retention applies."""
        return []


def kafka_end_offsets(config: StreamConfig, timeout: float = 10.0) -> dict[int, int]:
    """High watermark per partition of the topic (empty if the topic does not exist)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": config.bootstrap_servers, "group.id": config.group_id}
    )
    try:
        meta = consumer.list_topics(config.topic, timeout=timeout).topics.get(config.topic)
        if meta is None or meta.error is not None:
            return {}
        return {
            p: consumer.get_watermark_offsets(TopicPartition(config.topic, p), timeout=timeout)[1]
            for p in sorted(meta.partitions)
        }
    finally:
        consumer.close()
