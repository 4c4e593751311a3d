"""`st stream drain`: stream → bronze.webhook_events, exactly once, in bounded batches.

The design is kafka-delta-ingest's: the consumed offsets live in the Delta log as
application transactions (`txn`, version = the last offset of that partition in the
batch; the ids are offsets.py's: per group, topic and stream identity), written in the
same commit as the batch's rows. On start (and on every Kafka reassignment) each
partition is sought to the table's `txn` version + 1; a stored offset past the stream's
end stops the drain (StageError) instead of skipping the stream. Kafka group offsets are
committed afterwards for operators only.

Why a SIGKILL at any point neither loses nor duplicates:
- Events: rows and offsets land in one atomic commit. Killed before it, nothing of the
  batch is visible and the next run re-reads it from the old offsets; killed after it,
  the next run starts after it. Dead letters are written before it (writer.py says why
  that is safe).
- Concurrent drains: every commit is made against the snapshot the offsets were read
  from, so if another drain committed the same partition's `txn` meanwhile, delta-rs
  rejects ours (CommitFailedError); we drop the batch, reload, re-seek and go on. On one
  host the stage lock already makes the second drain exit 75.

Here is the loop; a batch is parsed by batch.py, checked for signatures the table holds
by signatures.py and committed by writer.py. Commits run in a writer thread, one at a
time and in order, while the main thread reads and parses the next batch; that batch is
checked against the table only after the commit before it succeeded, and is dropped
(re-read from the table's offsets) if that commit lost a race. Memory is bounded by two
batches (`stream.batch_size`, `stream.max_batch_bytes`) plus the signature index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smarttrader_cli.errors import LakeError
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import Consumer, StreamMessage
from smarttrader_cli.stream.batch import Prepared, prepare
from smarttrader_cli.stream.offsets import OffsetsAlreadyCommitted, StreamOffsets, resume_at
from smarttrader_cli.stream.writer import EventsWriter

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa
    from deltalake import DeltaTable

    from smarttrader_cli.config.schema import StreamConfig
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.stream.drain")
# Three Kafka sessions (session.timeout.ms = 10 s): time for a killed member to be evicted.
UNASSIGNED_WAIT_SECONDS = 30


@dataclass
class DrainLimits:
    """When a drain stops besides being caught up."""

    max_messages: int | None = None
    max_seconds: float | None = None
    follow: bool = False  # keep waiting for new messages once caught up
    stop: threading.Event | None = None  # set: commit the batch being read, then return


@dataclass
class DrainResult:
    """What one drain run did."""

    messages: int = 0
    events_written: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    commits: int = 0
    conflicts: int = 0
    caught_up: bool = False
    lag: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


class Drainer:
    """Moves batches from a consumer into bronze.webhook_events with their offsets."""

    def __init__(
        self,
        lake: Lake,
        consumer: Consumer,
        config: StreamConfig,
        meta: CommitMeta,
        progress: Callable[[DrainResult], None] | None = None,
        state_dir: Path | None = None,
        committed: Callable[[pa.Table, int], None] | None = None,
        caught_up: Callable[[], None] | None = None,
    ) -> None:
        """`state_dir` keeps the signature index between drains (signature_store.py);
        `committed(rows, version)` gets each commit's new bronze rows and table version;
        `caught_up()` is called when a poll of assigned partitions found nothing and no
        commit is in flight."""
        self.lake = lake
        self.consumer = consumer
        self.config = config
        self.meta = meta
        self.progress = progress
        self.committed = committed
        self.caught_up = caught_up
        self.result = DrainResult()
        self._snapshot: DeltaTable | None = None
        self._events = EventsWriter(lake, meta, state_dir)
        self._keys: StreamOffsets | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: tuple[Prepared, Future[int]] | None = None
        self._inflight_messages = 0
        self._unassigned_since: float | None = None

    # --- offsets ------------------------------------------------------------

    def _load_snapshot(self) -> DeltaTable:
        self.lake.ensure_table(WEBHOOK_EVENTS)
        self._snapshot = self.lake.table(WEBHOOK_EVENTS)
        return self._snapshot

    def offsets(self) -> StreamOffsets:
        """This drain's offset ids (the stream's identity is asked for once)."""
        if self._keys is None:
            self._keys = StreamOffsets(
                self.config.group_id, self.config.topic, self.consumer.identity()
            )
        return self._keys

    def resolve_offsets(self, partitions: list[int], quiet: bool = False) -> dict[int, int]:
        """Start offset per partition: the table's txn version + 1 (0 if never committed);
        StageError if that is past the stream's end. Later commits are made against the
        table as read here."""
        self._settle()  # the commit in flight decides where its partitions continue
        snapshot = self._load_snapshot()
        keys = self.offsets()
        offsets = keys.starts(snapshot, partitions)
        keys.check(snapshot, offsets, self.consumer.bounds(partitions), self.consumer.describe())
        if not quiet:
            log.info("drain starts at offsets %s", offsets)
        return offsets

    def reset_offsets(self) -> dict[int, int]:
        """`--reset-offsets`: record every partition as continuing at the first offset the
        stream still holds, in one commit (logged); returns those offsets."""
        partitions = self.consumer.partitions()
        snapshot = self._load_snapshot()
        keys = self.offsets()
        starts = {p: first for p, (first, _end) in self.consumer.bounds(partitions).items()}
        before = keys.starts(snapshot, partitions)
        empty = WEBHOOK_EVENTS.schema.empty_table()
        self.lake.append(WEBHOOK_EVENTS, empty, self.meta, keys.reset_txns(starts), snapshot)
        for p in partitions:
            log.warning(
                "--reset-offsets: partition %d of %s continues at offset %d (the stored "
                "offsets had it at %d)", p, self.consumer.describe(), starts[p], before[p],
            )  # fmt: skip
        self._snapshot = None
        return starts

    def _reseek(self) -> None:
        for p, offset in self.resolve_offsets(self.consumer.assignment()).items():
            self.consumer.seek(p, offset)

    # --- the loop -----------------------------------------------------------

    def run(self, limits: DrainLimits) -> DrainResult:
        """Drain until caught up (or `follow` and a limit), one Delta commit per batch.

        Reading and parsing the next batch overlaps the previous batch's commit (one
        commit in flight at a time, in a writer thread); commits stay strictly in order.
        """
        started = time.monotonic()
        deadline = started + limits.max_seconds if limits.max_seconds else None
        self.consumer.start(self.resolve_offsets)
        try:
            while True:
                remaining = None
                if limits.max_messages is not None:
                    remaining = limits.max_messages - self.result.messages - self._inflight_messages
                    if remaining <= 0:
                        break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if limits.stop is not None and limits.stop.is_set():
                    break
                batch, generation, idle = self._collect(
                    remaining, deadline, limits.follow, limits.stop
                )
                if generation != self.consumer.generation:
                    # Reassigned mid-batch: drop it and restart every partition from the table.
                    self._settle()
                    self._reseek()
                    continue
                if batch:
                    prepared = prepare(batch)
                    if self._settle():  # the commit before it lost a race: this batch is stale
                        self._reseek()
                        continue
                    self._submit(prepared)
                if idle and limits.follow and self._pending is not None:
                    if self._settle():
                        self._reseek()
                    continue
                if idle and not limits.follow:
                    if self._settle():
                        self._reseek()
                        continue
                    lag = self.consumer.lag()
                    if not any(lag.values()):
                        behind = self._unassigned_backlog()
                        if not behind:
                            self.result.caught_up = True
                            break
                        if self._gave_up_on(behind):
                            break
            self._settle()
            self._events.signatures.persist()
        finally:
            self._settle(raising=False)
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            self.result.lag = self.consumer.lag()
            self.result.seconds = time.monotonic() - started
            self.consumer.close()
        return self.result

    def commit_batch(self, batch: list[StreamMessage]) -> None:
        """Commit messages read from the consumer now, and wait: what `run` does with each
        batch, without the overlap (a commit that loses a race re-seeks, as in `run`)."""
        self._submit(prepare(batch))
        if self._settle():
            self._reseek()

    def _unassigned_backlog(self) -> dict[int, int]:
        """Unread messages in partitions the group has not given this drain (yet)."""
        ends = self.consumer.unassigned_ends()
        if not ends:
            return {}
        starts = self.resolve_offsets(list(ends), quiet=True)
        return {p: ends[p] - starts[p] for p in ends if ends[p] > starts[p]}

    def _gave_up_on(self, behind: dict[int, int]) -> bool:
        """Wait (polling) for a rebalance to hand over partitions a dead member still holds.

        "Caught up" means every partition is, not just ours; after UNASSIGNED_WAIT_SECONDS
        the run ends without claiming it, and the next run goes on.
        """
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
            log.warning(
                "partitions %s have %d unread messages but are assigned to another group "
                "member (a killed drain keeps them until its session times out); waiting",
                sorted(behind), sum(behind.values()),
            )  # fmt: skip
            return False
        if now - self._unassigned_since < UNASSIGNED_WAIT_SECONDS:
            return False
        log.warning(
            "gave up waiting %d s for partitions %s: another drain of group %s holds them",
            UNASSIGNED_WAIT_SECONDS, sorted(behind), self.config.group_id,
        )  # fmt: skip
        return True

    def _collect(
        self,
        remaining: int | None,
        deadline: float | None,
        follow: bool,
        stop: threading.Event | None = None,
    ) -> tuple[list[StreamMessage], int, bool]:
        """One batch: full, too old (`max_latency_seconds`), or nothing more to read now."""
        cfg = self.config
        cap = cfg.batch_size if remaining is None else min(cfg.batch_size, remaining)
        batch: list[StreamMessage] = []
        size = 0
        generation = self.consumer.generation
        first_at: float | None = None
        while len(batch) < cap and size < cfg.max_batch_bytes:
            now = time.monotonic()
            if first_at is not None and now - first_at >= cfg.max_latency_seconds:
                return batch, generation, False
            if deadline is not None and now >= deadline:
                return batch, generation, False
            if stop is not None and stop.is_set():
                return batch, generation, False
            wait = 1.0 if follow else self.consumer.empty_wait_seconds
            if first_at is not None:
                wait = min(wait, max(0.0, cfg.max_latency_seconds - (now - first_at)))
            got = self.consumer.poll(cap - len(batch), cfg.max_batch_bytes - size, wait)
            if self.consumer.generation != generation:  # reassigned: what we hold is stale
                return [], generation, False
            if not got:
                if not (batch or self._pending) and self.caught_up and self.consumer.assignment():
                    self.caught_up()  # (Kafka: only once the group gave it partitions)
                if not follow or (not batch and self._pending is not None):
                    return batch, generation, True  # following: settle the commit in flight
                continue
            if first_at is None:
                first_at = time.monotonic()
            batch.extend(got)
            size += sum(len(m.value) for m in got)
        return batch, generation, False

    # --- the writer thread --------------------------------------------------

    def _submit(self, prepared: Prepared) -> None:
        """Start the batch's commit in the writer thread (the previous one has settled)."""
        assert self._pending is None
        snapshot = self._snapshot or self._load_snapshot()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="st-drain-commit")
        commit = self._writer.submit(self._commit, prepared, snapshot)
        self._pending = (prepared, commit)
        self._inflight_messages = prepared.messages

    def _commit(self, prepared: Prepared, snapshot: DeltaTable) -> int:
        """In the writer thread: commit, then tell `committed` at once (the main thread may
        be waiting for the next batch's first message)."""
        started = time.monotonic()
        written = self._events.write(prepared, snapshot, self.offsets(), self.consumer.partitions)
        log.debug("committed %d events in %.3f s", written, time.monotonic() - started)
        if self.committed is not None and self._events.last is not None:
            self.committed(*self._events.last)
        return written

    def _settle(self, raising: bool = True) -> bool:
        """Wait for the commit in flight and account for it; True if it lost a race."""
        from deltalake.exceptions import CommitFailedError

        if self._pending is None:
            return False
        prepared, future = self._pending
        self._pending = None
        self._inflight_messages = 0
        try:
            written = future.result()
        except OffsetsAlreadyCommitted as exc:
            return self._lost_race("another drain committed these offsets already", exc)
        except Exception as exc:
            if isinstance(exc, LakeError) and isinstance(exc.__cause__, CommitFailedError):
                return self._lost_race("another drain committed these partitions first", exc)
            if raising:
                raise
            log.error("batch commit failed: %s", exc)
            return False
        self.consumer.commit_informational({p: resume_at(o) for p, o in prepared.last.items()})
        r = self.result
        r.messages += prepared.messages
        r.events_written += written
        r.duplicates += prepared.events_total - written
        r.dead_letters += len(prepared.dead)
        r.commits += 1
        if self.progress:
            self.progress(r)
        return False

    def _lost_race(self, what: str, exc: Exception) -> bool:
        self.result.conflicts += 1
        log.warning("%s; re-seeking: %s", what, exc)
        self._snapshot = None
        return True
