"""The drain's Kafka consumer: subscribes to the topic as `stream.group_id`, and on every
assignment seeks each partition to the offset the drain resolves from the Delta table;
group offsets are committed only as information."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from smarttrader_cli.stream.backend import OffsetResolver, StreamMessage
from smarttrader_cli.stream.kafka_backend import (
    RECEIVED_HEADER,
    client_config,
    ensure_topic,
    topic_identity,
)

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import StreamConfig

log = logging.getLogger("st.stream.kafka")


class KafkaConsumer:
    """The drain's consumer: group membership for assignment, offsets from the Delta table.

    Every partition has an expected next offset (set by assignment or seek). Messages
    below it are stale fetches from before a seek and are dropped; right after a seek the
    first message must be exactly the sought offset, unless retention removed it (the
    low watermark is past it). A seek the client refuses (partition not fetching yet) is
    retried before the next fetch.
    """

    empty_wait_seconds = 0.2

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
        self._identity: str | None = None
        self._partitions: list[int] | None = None
        self._topic_ready = False
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

    def identity(self) -> str:
        """The topic id (asked for once, before the first assignment)."""
        if self._identity is None:
            self._ensure_topic()
            self._identity = topic_identity(self.config)
        return self._identity

    def describe(self) -> str:
        return f"kafka topic {self.config.topic}"

    def partitions(self) -> list[int]:
        """Every partition of the topic (listed once)."""
        if self._partitions is None:
            self._ensure_topic()
            topics = self._consumer.list_topics(self.config.topic, timeout=10).topics
            meta = topics.get(self.config.topic)
            self._partitions = sorted(meta.partitions) if meta is not None else []
        return list(self._partitions)

    def bounds(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """(low, high) watermark per partition."""
        from confluent_kafka import TopicPartition

        out = {}
        for p in partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.config.topic, p), timeout=10, cached=False
            )
            out[p] = (int(low), int(high))
        return out

    def _ensure_topic(self) -> None:
        from smarttrader_cli.errors import StError

        if self._topic_ready:
            return
        try:
            ensure_topic(self.config)
            self._topic_ready = True
        except Exception as exc:
            raise StError(
                f"kafka at {self.config.bootstrap_servers} is unreachable: {exc}"
            ) from exc

    def start(self, resolve: OffsetResolver) -> None:
        """Subscribe and wait for the first assignment (seeks happen in `_on_assign`)."""
        from smarttrader_cli.errors import StError

        self._resolve = resolve
        self.identity()  # before any assignment: the resolver needs it
        self.partitions()
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
        # `consume` waits for all `max_messages` or the whole timeout: take what the client
        # has fetched already, else wait for one message only, so a light trickle (what
        # `st follow` reads) is not held back for up to the timeout.
        got = self._consumer.consume(num_messages=max_messages, timeout=0)
        if not got and timeout > 0:
            first = self._consumer.poll(timeout)
            if first is not None:
                got = [first]
                if max_messages > 1:
                    got += self._consumer.consume(num_messages=max_messages - 1, timeout=0)
        for msg in got:
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
