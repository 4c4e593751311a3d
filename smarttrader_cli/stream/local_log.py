"""The `local` backend: a durable on-disk log with partitions and offsets, no broker.

Layout: `<stream.local_dir>/<topic>/p<N>/<base offset>.seg` (see segments.py) and
`<topic>/meta.json`: the partition count, fixed at creation, and a random stream id that
names this log (the drain keys its stored offsets by it, so a log deleted and created
again is not read from the old one's offsets). A message goes to partition
crc32(key) % partitions, so one signature always lands in one partition; offsets are
record indexes per partition. Publishing fsyncs before it returns. One writer process at
a time holds `<topic>/.writer.lock`; readers run concurrently.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from smarttrader_cli.errors import BrokerUnavailableError, StError
from smarttrader_cli.host import dir_problem, dir_state
from smarttrader_cli.stream.backend import (
    OffsetResolver,
    OutboundEvent,
    StreamMessage,
)
from smarttrader_cli.stream.frames import Damage
from smarttrader_cli.stream.segments import (
    SegmentReader,
    SegmentWriter,
    end_offset,
    first_offset,
    list_segments,
    segment_name,
)

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import StreamConfig
    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.stream.local")

HEADER = struct.Struct(">qH")


def encode(event: OutboundEvent) -> bytes:
    """A log record body: received time, key length, key, value."""
    return HEADER.pack(event.received_at_us, len(event.key)) + event.key + event.value


def decode(partition: int, offset: int, body: bytes) -> StreamMessage:
    """A record body back as a message."""
    received, key_len = HEADER.unpack_from(body)
    key_end = HEADER.size + key_len
    return StreamMessage(partition, offset, body[HEADER.size : key_end], body[key_end:], received)


def _decode_run(partition: int, first: int, bodies: list[bytes]) -> list[StreamMessage]:
    """`decode` of consecutive records, inlined: this is the drain's read loop."""
    unpack, header = HEADER.unpack_from, HEADER.size
    out = []
    offset = first
    for body in bodies:
        received, key_len = unpack(body)
        key_end = header + key_len
        out.append(StreamMessage(partition, offset, body[header:key_end], body[key_end:], received))
        offset += 1
    return out


def damaged_message(partition: int, damage: Damage) -> StreamMessage:
    """A damaged run of records as one message for the dead letters, at its last offset
    (so the drain's offsets move past all of it); the value is what could be recovered."""
    raw = damage.raw
    if damage.count == 1 and len(raw) >= HEADER.size:
        key_end = HEADER.size + HEADER.unpack_from(raw)[1]
        if key_end <= len(raw):
            raw = raw[key_end:]  # the stored event value (its key and time may be damaged too)
    return StreamMessage(partition, damage.last, None, raw, None, damage.describe())


def partition_for(key: bytes, partitions: int) -> int:
    """Stable across processes and runs (unlike hash())."""
    return zlib.crc32(key) % partitions


class LocalLog:
    """The topic directory, its fixed partition count and its stream id."""

    def __init__(self, config: StreamConfig) -> None:
        self.root = Path(config.local_dir) / config.topic
        self.topic = config.topic
        self.segment_bytes = config.segment_bytes
        self.partitions = config.partitions
        self.stream_id: str | None = None  # None: not created yet (or by an older `st`)
        self._load()

    def _load(self) -> bool:
        meta = self.root / "meta.json"
        if not meta.exists():
            return False
        data = json.loads(meta.read_text())
        self.partitions = int(data["partitions"])
        self.stream_id = data.get("stream_id")
        return True

    @property
    def identity(self) -> str | None:
        """What the drain keys this log's offsets by."""
        return None if self.stream_id is None else f"local-{self.stream_id}"

    def create(self) -> None:
        """Create the topic directory, recording its partition count (fixed from then on)
        and a new stream id; a log created by an older `st` gets its stream id now."""
        if self._load() and self.stream_id is not None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.root / ".meta.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the server and a drain may both get here
            existed = self._load()
            if self.stream_id is not None:
                return
            self.stream_id = uuid.uuid4().hex
            meta = self.root / "meta.json"
            tmp = meta.with_name(f"meta.{os.getpid()}.tmp")
            with tmp.open("w") as f:
                json.dump({"partitions": self.partitions, "stream_id": self.stream_id}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, meta)
            if existed:
                log.info("local stream log %s gets the stream id %s", self.root, self.stream_id)
        finally:
            os.close(lock)

    def partition_dir(self, partition: int) -> Path:
        return self.root / f"p{partition}"

    def end_offsets(self) -> dict[int, int]:
        """High watermark per partition."""
        return {p: end_offset(self.partition_dir(p)) for p in range(self.partitions)}

    def bounds(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """(first offset still on disk, high watermark) per partition."""
        return {
            p: (first_offset(self.partition_dir(p)), end_offset(self.partition_dir(p)))
            for p in partitions
        }


class LocalBackend:
    """The local log's answers for status, `st doctor` and `st ops cleanup`."""

    needs_spool = False  # publishing fsyncs to the log itself: nothing to wait out

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.log = LocalLog(config)

    def producer(self) -> LocalProducer:
        return LocalProducer(self.config)

    def consumer(self) -> LocalConsumer:
        return LocalConsumer(self.config)

    def identity(self) -> str | None:
        return self.log.identity

    def end_offsets(self) -> dict[int, int]:
        return self.log.end_offsets()

    def health(self) -> str:
        """The log directory is writable (or can be created)."""
        directory = Path(self.config.local_dir)
        problem = dir_problem(directory)
        if problem:
            raise BrokerUnavailableError(f"local log {self.config.local_dir}: {problem}")
        return f"local log {directory.resolve()} {dir_state(directory)}"

    def retention_candidates(self, lake: Lake) -> list[Path]:
        """Segments whose every record is committed by this log's own offsets (its topic
        and stream id, see offsets.py): offsets of another stream, or the topic-less ones
        of an older `st` not yet carried over by a drain, remove nothing; nor do offsets
        past the log's end (they cannot be this log's). The segment being written is never
        listed."""
        from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
        from smarttrader_cli.stream.offsets import configured_offsets, resume_at

        keys = configured_offsets(self.config, self)
        if keys is None or not lake.exists(WEBHOOK_EVENTS):
            return []
        table = lake.table(WEBHOOK_EVENTS)
        found = []
        for partition in range(self.log.partitions):
            version = keys.own(table, partition)
            if version is None:
                continue
            start = resume_at(version)
            directory = self.log.partition_dir(partition)
            if start > end_offset(directory):
                log.warning(
                    "offsets stored for %s partition %d (through %d) are past its end: "
                    "keeping its segments", self.log.root, partition, version,
                )  # fmt: skip
                continue
            for base, next_base in itertools.pairwise(list_segments(directory)):
                if next_base > start:
                    break
                found.append(directory / segment_name(base))
        return found


class LocalProducer:
    """Appends to the local log under the writer lock; durable (fsynced) on return."""

    def __init__(self, config: StreamConfig) -> None:
        self.log = LocalLog(config)
        self.log.create()
        self._lock_fd = os.open(self.log.root / ".writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StError(
                f"another process is writing the local stream log {self.log.root}"
            ) from None
        self._writers = {
            p: SegmentWriter(self.log.partition_dir(p), self.log.segment_bytes)
            for p in range(self.log.partitions)
        }
        self._append = threading.Lock()  # appends and the counters below
        self._syncing = threading.Lock()  # one fsync cycle at a time
        self._appended = 0  # appends made (a sequence number per publish call)
        self._synced = 0  # appends covered by a completed fsync cycle
        self._dirty: set[int] = set()  # partitions appended to since the last cycle began
        self._broken = False  # a write or fsync failed: nothing more is acknowledged

    def publish(self, events: Sequence[OutboundEvent], timeout: float) -> list[bool]:
        """Append, then make durable; all-or-nothing per call.

        Group commit across concurrent callers: appends are serialized, and one fsync
        cycle at a time covers every append made before it started, so a caller whose
        records an fsync started after already covered returns without its own. One
        cycle at a time also means each write-back error is reported to exactly one fsync,
        whose callers all fail; after that the log is not trusted (every later call
        fails) until the producer is reopened.
        """
        by_partition: dict[int, list[bytes]] = {}
        for event in events:
            p = partition_for(event.key, self.log.partitions)
            by_partition.setdefault(p, []).append(encode(event))
        failed = [False] * len(events)
        with self._append:
            if self._broken:
                return failed
            try:
                for p, bodies in by_partition.items():
                    self._writers[p].append(bodies, sync=False)
            except OSError:
                self._broken = True
                return failed
            self._dirty.update(by_partition)
            self._appended += 1
            mine = self._appended
        with self._syncing:
            if self._synced >= mine:
                return [True] * len(events)
            with self._append:
                if self._broken:
                    return failed
                target, dirty, self._dirty = self._appended, self._dirty, set()
                fds = [os.dup(self._writers[p].fileno()) for p in dirty]  # survive a roll
            try:
                for fd in fds:
                    os.fsync(fd)
            except OSError:
                self._broken = True
                return failed
            finally:
                for fd in fds:
                    os.close(fd)
            self._synced = target
        return [True] * len(events)

    def describe(self) -> str:
        return f"local log {self.log.root}"

    def close(self, timeout: float = 10.0) -> None:
        with self._append:
            for writer in self._writers.values():
                writer.close()
            self._writers = {}
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


class LocalConsumer:
    """Reads every partition of the local log from the offsets the drain resolves."""

    empty_wait_seconds = 0.0

    def __init__(self, config: StreamConfig) -> None:
        self.log = LocalLog(config)
        self.generation = 0
        self._readers: dict[int, SegmentReader] = {}
        self._next_partition = 0

    def identity(self) -> str:
        """The log's stream id (created with the log if there is none yet)."""
        if self.log.identity is None:
            self.log.create()
        assert self.log.identity is not None
        return self.log.identity

    def describe(self) -> str:
        return f"local log {self.log.root}"

    def partitions(self) -> list[int]:
        return list(range(self.log.partitions))

    def bounds(self, partitions: list[int]) -> dict[int, tuple[int, int]]:
        return self.log.bounds(partitions)

    def start(self, resolve: OffsetResolver) -> None:
        """Take all partitions (one drain reads the whole local log) and seek each."""
        self.identity()
        parts = list(range(self.log.partitions))
        self._readers = {p: SegmentReader(self.log.partition_dir(p)) for p in parts}
        for p, offset in resolve(parts).items():
            self._readers[p].seek(offset)
        self.generation += 1

    def assignment(self) -> list[int]:
        return sorted(self._readers)

    def seek(self, partition: int, offset: int) -> None:
        self._readers[partition].seek(offset)

    def poll(self, max_messages: int, max_bytes: int, timeout: float) -> list[StreamMessage]:
        """Round-robin over partitions; waits up to `timeout` when nothing is there."""
        deadline = time.monotonic() + timeout
        while True:
            out = self._read(max_messages, max_bytes)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def _read(self, max_messages: int, max_bytes: int) -> list[StreamMessage]:
        out: list[StreamMessage] = []
        size = 0
        parts = self.assignment()
        if not parts:
            return out
        for i in range(len(parts)):
            p = parts[(self._next_partition + i) % len(parts)]
            reader = self._readers[p]
            while len(out) < max_messages and size < max_bytes:
                first, bodies, damage = reader.read_run(max_messages - len(out), max_bytes - size)
                out.extend(_decode_run(p, first, bodies))
                size += sum(map(len, bodies))
                if damage is None:
                    break
                log.error("partition %d: %s: dead-lettered", p, damage.describe())
                out.append(damaged_message(p, damage))
                size += len(damage.raw)
        self._next_partition = (self._next_partition + 1) % len(parts)
        return out

    def lag(self) -> dict[int, int]:
        return {p: r.remaining() for p, r in self._readers.items()}

    def unassigned_ends(self) -> dict[int, int]:
        """Always empty: the local log's one drain (the stage lock) reads every partition."""
        return {}

    def commit_informational(self, offsets: dict[int, int]) -> None:
        """Nothing to do: the Delta table is the only offset store of the local backend."""

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers = {}
