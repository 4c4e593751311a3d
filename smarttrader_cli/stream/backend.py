"""The stream backends' one interface: producers publish events durably, consumers read by offset.

`kafka` (confluent-kafka against Redpanda or Apache Kafka) and `local` (an on-disk segment
log, no broker) implement it; the webhook server and `st stream drain` see only this. A
Backend opens them and answers what else differs (status, doctor, cleanup), so no caller
asks which backend is configured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from smarttrader_cli.config.schema import Config, StreamConfig
    from smarttrader_cli.lake.store import Lake


@dataclass(frozen=True)
class OutboundEvent:
    """One webhook event on its way to the stream: key = signature, value = event JSON."""

    key: bytes
    value: bytes
    received_at_us: int


class StreamMessage(NamedTuple):
    """One message read back from the stream, with its position (a tuple: cheap to build).

    `problem` is set on a message the stream itself could not read intact (a damaged
    record of the local log): the drain dead-letters it with that reason, `value` being
    whatever bytes could be recovered.
    """

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    received_at_us: int | None
    problem: str | None = None


# Given the partitions just assigned, return the offset to start each one at.
OffsetResolver = Callable[[list[int]], dict[int, int]]


class Producer(Protocol):
    """Publishes events; returns only once they are durable in the stream."""

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        """Durability flag per event: True once acknowledged (local: fsynced)."""
        ...

    def describe(self) -> str:
        """A short name of where events go, for status output."""
        ...

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and release resources."""
        ...


class Consumer(Protocol):
    """Reads the stream from offsets the caller chooses (the Delta table's txn versions)."""

    generation: int  # bumped on every (re)assignment; buffered messages of older ones are stale
    # How long a drain that does not follow polls an empty stream before it takes it as read
    # to the end (the local log is read in place; Kafka's fetches arrive in the background).
    empty_wait_seconds: float

    def identity(self) -> str:
        """What the stream is: the same while it exists, new when it is created again
        (local: the log's stream id; Kafka: the topic id)."""
        ...

    def describe(self) -> str:
        """The stream, for messages."""
        ...

    def partitions(self) -> list[int]:
        """Every partition of the stream, assigned to this consumer or not."""
        ...

    def bounds(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """(first offset still stored, high watermark) per partition."""
        ...

    def start(self, resolve: OffsetResolver) -> None:
        """Join, and seek every partition it gets to `resolve(partitions)`."""
        ...

    def assignment(self) -> list[int]:
        """The partitions currently assigned."""
        ...

    def poll(self, max_messages: int, max_bytes: int, timeout: float) -> list[StreamMessage]:
        """Up to `max_messages` messages (about `max_bytes`) in offset order per partition."""
        ...

    def seek(self, partition: int, offset: int) -> None:
        """Continue `partition` at `offset`."""
        ...

    def lag(self) -> dict[int, int]:
        """Messages not yet read per assigned partition (high watermark minus position)."""
        ...

    def unassigned_ends(self) -> dict[int, int]:
        """High watermark of each partition of the stream NOT assigned to this consumer."""
        ...

    def commit_informational(self, offsets: dict[int, int]) -> None:
        """Record progress where operators look (Kafka group offsets); never read back."""
        ...

    def close(self) -> None:
        """Leave the group and release resources."""
        ...


class Backend(Protocol):
    """What differs between backends for everything besides publishing and reading:
    status, `st doctor`, `st ops cleanup` and the webhook server ask this, never the name."""

    needs_spool: bool  # the webhook server spools events while the stream is away (a broker)

    def producer(self) -> Producer:
        """A producer for the webhook server."""
        ...

    def consumer(self) -> Consumer:
        """A consumer for the drain's group."""
        ...

    def identity(self) -> str | None:
        """The stream's identity (see Consumer.identity); None while it has none. Creates
        nothing."""
        ...

    def end_offsets(self) -> dict[int, int]:
        """The stream's high watermark per partition (empty while there is no stream)."""
        ...

    def health(self) -> str:
        """What a quick check found, for `st doctor`; BrokerUnavailableError when the
        stream cannot be used."""
        ...

    def retention_candidates(self, lake: Lake) -> list[Path]:
        """Stream files whose every record is committed to bronze.webhook_events by this
        stream's own offsets: cleanup removes those past the retention."""
        ...


def open_backend(config: StreamConfig) -> Backend:
    """The configured backend (the loader allows no other than local and kafka)."""
    if config.backend == "local":
        from smarttrader_cli.stream.local_log import LocalBackend

        return LocalBackend(config)
    from smarttrader_cli.stream.kafka_backend import KafkaBackend

    return KafkaBackend(config)


def open_producer(config: Config) -> Producer:
    """The configured backend's producer."""
    return open_backend(config.stream).producer()


def open_consumer(config: Config) -> Consumer:
    """The configured backend's consumer for the drain's group."""
    return open_backend(config.stream).consumer()
