"""The `kafka` backend: confluent-kafka against Apache Kafka or Redpanda.

Producer: `acks=all`, idempotent, one message per event (key = signature, value = the
event JSON, header `received_at_us`); `message.timeout.ms` equals the server's ack wait,
so a message we spool is also one librdkafka stops retrying. Consumer: subscribes to the
topic as `stream.group_id`, and on every assignment seeks each partition to the offset
the drain resolves from the Delta table; group offsets are committed only as information.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smarttrader_cli.stream.backend import OffsetResolver, OutboundEvent, StreamMessage

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import StreamConfig

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
    try:
        futures[config.topic].result(timeout)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise
    log.info("created topic %s with %d partitions", config.topic, config.partitions)


class KafkaProducer:
    """Publishes with acks=all and idempotence; a background thread serves delivery reports."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self._producer: Any = None
        self._fatal = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._topic_ready = False
        self._admin_client: Any = None
        self._poller = threading.Thread(target=self._poll_loop, name="st-kafka-poll", daemon=True)
        self._make()
        self._poller.start()

    def _make(self) -> None:
        from confluent_kafka import Producer

        timeout_ms = max(1000, int(self.config.producer_timeout_seconds * 1000))
        self._producer = Producer(
            {
                **client_config(self.config),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": timeout_ms,
                "socket.timeout.ms": min(timeout_ms, 10000),
                "compression.type": "lz4",
                "error_cb": self._on_error,
            }
        )
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

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            producer = self._producer
            if producer is not None:
                producer.poll(0.05)
            else:
                time.sleep(0.05)

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
        """Queue events without waiting; `report(index, acknowledged)` follows for each one,
        from the delivery thread, within `message.timeout.ms` (at once if the queue is full)."""
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
            self.send(events, report)
            done.wait(timeout)
        with guard:
            return list(results)

    def describe(self) -> str:
        return f"kafka {self.config.bootstrap_servers} topic {self.config.topic}"

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout`), then stop."""
        if self._producer is not None:
            left = self._producer.flush(timeout)
            if left:
                log.warning("%d messages were still unacknowledged at shutdown", left)
        self._stop.set()
        self._poller.join(2)


class KafkaConsumer:
    """The drain's consumer: group membership for assignment, offsets from the Delta table.

    Every partition has an expected next offset (set by assignment or seek). Messages
    below it are stale fetches from before a seek and are dropped; right after a seek the
    first message must be exactly the sought offset, unless retention removed it (the
    low watermark is past it). A seek the client refuses (partition not fetching yet) is
    retried before the next fetch.
    """

    def __init__(self, config: StreamConfig) -> None:
        from confluent_kafka import Consumer

        self.config = config
        self.generation = 0
        self._resolve: OffsetResolver | None = None
        self._assigned: list[int] = []
        self._expect: dict[int, int] = {}
        self._resync: set[int] = set()
        self._pending_seeks: dict[int, int] = {}
        self._buffer: list[StreamMessage] = []
        self._consumer = Consumer(
            {
                **client_config(config),
                "group.id": config.group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
                "fetch.max.bytes": max(1 << 20, config.max_batch_bytes),
                "session.timeout.ms": 10000,
                "max.poll.interval.ms": 600000,
            }
        )

    def start(self, resolve: OffsetResolver) -> None:
        """Subscribe and wait for the first assignment (seeks happen in `_on_assign`)."""
        from smarttrader_cli.errors import StError

        self._resolve = resolve
        try:
            ensure_topic(self.config)
        except Exception as exc:
            raise StError(
                f"kafka at {self.config.bootstrap_servers} is unreachable: {exc}"
            ) from exc
        self._consumer.subscribe(
            [self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self._assigned and time.monotonic() < deadline:
            got = self._consume(100, 0.2)  # the assignment callback runs in here
            self._buffer.extend(got)
        if not self._assigned:
            raise StError(f"no partitions of {self.config.topic} assigned to this drain in 30 s")

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        assert self._resolve is not None
        offsets = self._resolve([tp.partition for tp in partitions])
        for tp in partitions:
            tp.offset = offsets[tp.partition]
        consumer.assign(partitions)
        self._assigned = sorted(tp.partition for tp in partitions)
        self._expect = {tp.partition: tp.offset for tp in partitions}
        self._resync = set(self._assigned)
        self._pending_seeks = {}
        self._buffer = []
        self.generation += 1
        log.info("assigned partitions %s at offsets %s", self._assigned, offsets)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        consumer.unassign()
        self._assigned = []
        self._expect = {}
        self._buffer = []
        self.generation += 1

    def assignment(self) -> list[int]:
        return list(self._assigned)

    def seek(self, partition: int, offset: int) -> None:
        self._buffer = [m for m in self._buffer if m.partition != partition]
        self._expect[partition] = offset
        self._resync.add(partition)
        self._pending_seeks[partition] = offset
        self._apply_seeks()

    def _apply_seeks(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        for p, offset in list(self._pending_seeks.items()):
            try:
                self._consumer.seek(TopicPartition(self.config.topic, p, offset))
            except KafkaException as exc:
                log.debug("seek of partition %d deferred: %s", p, exc)
                continue
            del self._pending_seeks[p]

    def _consume(self, max_messages: int, timeout: float) -> list[StreamMessage]:
        from confluent_kafka import KafkaError, KafkaException

        self._apply_seeks()
        out = []
        for msg in self._consumer.consume(num_messages=max_messages, timeout=timeout):
            err = msg.error()
            if err is not None:
                if err.fatal() or err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaException(err)
                log.debug("kafka consumer: %s", err)
                continue
            p, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if not self._accept(p, offset):
                continue
            out.append(StreamMessage(p, offset, msg.key(), msg.value() or b"", _received(msg)))
        return out

    def _accept(self, partition: int, offset: int) -> bool:
        expected = self._expect.get(partition)
        if expected is None or offset < expected or partition in self._pending_seeks:
            return False
        if offset > expected and partition in self._resync and self._low(partition) <= expected:
            return False  # fetched before the last seek
        self._resync.discard(partition)
        self._expect[partition] = offset + 1
        return True

    def _low(self, partition: int) -> int:
        from confluent_kafka import TopicPartition

        low, _ = self._consumer.get_watermark_offsets(
            TopicPartition(self.config.topic, partition), timeout=10, cached=False
        )
        return int(low)

    def poll(self, max_messages: int, max_bytes: int, timeout: float) -> list[StreamMessage]:
        """Up to the limits; what does not fit stays buffered for the next poll."""
        if not self._buffer:
            self._buffer = self._consume(max_messages, timeout)
        taken = 0
        size = 0
        for m in self._buffer:
            if taken >= max_messages or (taken and size + len(m.value) > max_bytes):
                break
            taken += 1
            size += len(m.value)
        out, self._buffer = self._buffer[:taken], self._buffer[taken:]
        return out

    def lag(self) -> dict[int, int]:
        from confluent_kafka import TopicPartition

        lag = {}
        buffered: dict[int, int] = {}
        for m in self._buffer:
            buffered[m.partition] = buffered.get(m.partition, 0) + 1
        for p in self._assigned:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.config.topic, p), timeout=10, cached=False
            )
            position = max(low, self._expect.get(p, low))
            lag[p] = max(0, high - position) + buffered.get(p, 0)
        return lag

    def unassigned_ends(self) -> dict[int, int]:
        """High watermarks of the topic's partitions the group gave to another member.

        After a drain is killed its member stays in the group until the session times out
        (`session.timeout.ms`), holding partitions nobody reads meanwhile.
        """
        from confluent_kafka import TopicPartition

        topics = self._consumer.list_topics(self.config.topic, timeout=10).topics
        partitions = (
            set(topics[self.config.topic].partitions) if self.config.topic in topics else set()
        )
        return {
            p: self._consumer.get_watermark_offsets(
                TopicPartition(self.config.topic, p), timeout=10, cached=False
            )[1]
            for p in sorted(partitions - set(self._assigned))
        }

    def commit_informational(self, offsets: dict[int, int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            self._consumer.commit(
                offsets=[TopicPartition(self.config.topic, p, o) for p, o in offsets.items()],
                asynchronous=True,
            )
        except KafkaException as exc:  # informational only
            log.debug("group offset commit failed: %s", exc)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):  # already closed
            self._consumer.close()


def _received(msg: Any) -> int | None:
    """The receive time the webhook server put in the message header."""
    for name, value in msg.headers() or []:
        if name == RECEIVED_HEADER and value:
            return int(value)
    return None


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
