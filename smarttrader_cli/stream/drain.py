"""`st stream drain`: stream → bronze.webhook_events, exactly once, in bounded batches.

The design is kafka-delta-ingest's: the consumed offsets live in the Delta log as
application transactions (`txn`, app id `<group_id>-<partition>`, version = the last
offset of that partition in the batch), written in the same commit as the batch's rows.
On start (and on every Kafka reassignment) each partition is sought to the table's
`txn` version + 1; Kafka group offsets are committed afterwards for operators only.

Why a SIGKILL at any point neither loses nor duplicates:
- Events: rows and offsets land in one atomic commit. Killed before it, nothing of the
  batch is visible and the next run re-reads it from the old offsets; killed after it,
  the next run starts after it.
- Dead letters (messages that are not a storable event) go to their own table,
  bronze.webhook_dead_letters, so they cannot share the events commit. They are written
  first, as a merge that only inserts keys (stream_partition, stream_offset) not already
  there, and only then the events commit carries the offsets past them. A kill between
  the two leaves dead letters whose offsets are not yet committed; the re-run reads the
  same messages, its dead-letter merge inserts nothing new, and the events commit follows.
- Concurrent drains: every commit is made against the snapshot the offsets were read
  from, so if another drain committed the same partition's `txn` meanwhile, delta-rs
  rejects ours (CommitFailedError); we drop the batch, reload, re-seek and go on. On one
  host the stage lock already makes the second drain exit 75.

The table holds one row per signature: Helius redelivers and the spool may republish.
A duplicate signature always lands in the same partition (partitioning is by key), so it
is dropped within the batch, and against the table by reading the `signature` of rows in
the batch's slot range only (a retried transaction has the same slot, and Delta file
statistics prune everything else), keeping the commit an append, never a table-wide merge.
Memory is bounded by the batch (`stream.batch_size`, `stream.max_batch_bytes`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from smarttrader_cli.errors import LakeError
from smarttrader_cli.lake.tables import WEBHOOK_DEAD_LETTERS, WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import Consumer, StreamMessage
from smarttrader_cli.stream.parse import MAX_SIGNATURE_LENGTH, EventError, event_fields

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.config.schema import StreamConfig
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.stream.drain")


@dataclass
class DrainLimits:
    """When a drain stops besides being caught up."""

    max_messages: int | None = None
    max_seconds: float | None = None
    follow: bool = False  # keep waiting for new messages once caught up


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


def app_id(group_id: str, partition: int) -> str:
    """The Delta application-transaction id of one partition for one consumer group."""
    return f"{group_id}-{partition}"


class Drainer:
    """Moves batches from a consumer into bronze.webhook_events with their offsets."""

    def __init__(
        self,
        lake: Lake,
        consumer: Consumer,
        config: StreamConfig,
        meta: CommitMeta,
        progress: Callable[[DrainResult], None] | None = None,
    ) -> None:
        self.lake = lake
        self.consumer = consumer
        self.config = config
        self.meta = meta
        self.progress = progress
        self.result = DrainResult()
        self._snapshot: DeltaTable | None = None
        self._fs: Any = None

    def _filesystem(self) -> Any:
        """The table's storage as a pyarrow filesystem rooted at the table (built once)."""
        if self._fs is None:
            import pyarrow.fs as pa_fs
            from deltalake.fs import DeltaStorageHandler

            handler = DeltaStorageHandler(self.lake.uri(WEBHOOK_EVENTS), self.lake.storage_options)
            self._fs = pa_fs.PyFileSystem(handler)
        return self._fs

    # --- offsets ------------------------------------------------------------

    def _load_snapshot(self) -> DeltaTable:
        self.lake.ensure_table(WEBHOOK_EVENTS)
        self._snapshot = self.lake.table(WEBHOOK_EVENTS)
        return self._snapshot

    def resolve_offsets(self, partitions: list[int]) -> dict[int, int]:
        """Start offset per partition: the table's txn version + 1 (0 if never committed)."""
        snapshot = self._load_snapshot()
        offsets = {}
        for p in partitions:
            version = snapshot.transaction_version(app_id(self.config.group_id, p))
            offsets[p] = 0 if version is None else version + 1
        log.info("drain starts at offsets %s", offsets)
        return offsets

    def _reseek(self) -> None:
        for p, offset in self.resolve_offsets(self.consumer.assignment()).items():
            self.consumer.seek(p, offset)

    # --- the loop -----------------------------------------------------------

    def run(self, limits: DrainLimits) -> DrainResult:
        """Drain until caught up (or `follow` and a limit), one Delta commit per batch."""
        started = time.monotonic()
        deadline = started + limits.max_seconds if limits.max_seconds else None
        self.consumer.start(self.resolve_offsets)
        try:
            while True:
                remaining = None
                if limits.max_messages is not None:
                    remaining = limits.max_messages - self.result.messages
                    if remaining <= 0:
                        break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                batch, generation, idle = self._collect(remaining, deadline, limits.follow)
                if generation != self.consumer.generation:
                    # Reassigned mid-batch: drop it and restart every partition from the table.
                    self._reseek()
                    continue
                if batch:
                    self._commit(batch)
                if idle and not limits.follow:
                    lag = self.consumer.lag()
                    if not any(lag.values()):
                        self.result.caught_up = True
                        break
        finally:
            self.result.lag = self.consumer.lag()
            self.result.seconds = time.monotonic() - started
            self.consumer.close()
        return self.result

    def _collect(
        self, remaining: int | None, deadline: float | None, follow: bool
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
            wait = 1.0 if follow else 0.2
            if first_at is not None:
                wait = min(wait, max(0.0, cfg.max_latency_seconds - (now - first_at)))
            got = self.consumer.poll(cap - len(batch), cfg.max_batch_bytes - size, wait)
            if self.consumer.generation != generation:  # reassigned: what we hold is stale
                return [], generation, False
            if not got:
                if not follow:
                    return batch, generation, True
                continue
            if first_at is None:
                first_at = time.monotonic()
            batch.extend(got)
            size += sum(len(m.value) for m in got)
        return batch, generation, False

    def _commit(self, batch: list[StreamMessage]) -> None:
        from deltalake.exceptions import CommitFailedError

        events, dead = _split(batch)
        unique = _dedupe_batch(events)
        snapshot = self._snapshot or self._load_snapshot()
        fresh = _drop_existing(snapshot, unique, self._filesystem())
        now = datetime.now(UTC)
        if dead:
            table = pa.Table.from_pylist(
                [dict(d, ingested_at=now, run_id=self.meta.run_id) for d in dead],
                schema=WEBHOOK_DEAD_LETTERS.schema,
            )
            self.lake.merge(WEBHOOK_DEAD_LETTERS, table, self.meta, update_existing=False)
        last: dict[int, int] = {}
        for m in batch:
            last[m.partition] = max(last.get(m.partition, -1), m.offset)
        txns = [(app_id(self.config.group_id, p), o) for p, o in sorted(last.items())]
        rows = _finish(fresh, now, self.meta.run_id)
        try:
            self.lake.append(WEBHOOK_EVENTS, rows, self.meta, txns, snapshot=snapshot)
        except LakeError as exc:
            if not isinstance(exc.__cause__, CommitFailedError):
                raise
            self.result.conflicts += 1
            log.warning("another drain committed these partitions first; re-seeking: %s", exc)
            self._reseek()
            return
        self.consumer.commit_informational({p: o + 1 for p, o in last.items()})
        r = self.result
        r.messages += len(batch)
        r.events_written += rows.num_rows
        r.duplicates += events.num_rows - rows.num_rows
        r.dead_letters += len(dead)
        r.commits += 1
        if self.progress:
            self.progress(r)


def _split(batch: list[StreamMessage]) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The batch's events as columns (without ingest fields) and its dead letters.

    The common, well-formed event is checked inline (this loop is the drain's hot path);
    anything unusual goes through `event_fields`, which also names what is wrong.
    """
    cols: dict[str, list[Any]] = {c: [] for c in _PARSED}
    good: list[StreamMessage] = []
    dead: list[dict[str, Any]] = []
    loads = orjson.loads
    for m in batch:
        row = None
        try:
            event = loads(m.value)
        except orjson.JSONDecodeError:
            event = None
        if type(event) is dict:
            sig, slot, ts = event.get("signature"), event.get("slot"), event.get("timestamp")
            etype, source, payer = event.get("type"), event.get("source"), event.get("feePayer")
            if (
                type(sig) is str
                and 0 < len(sig) <= MAX_SIGNATURE_LENGTH
                and not sig[0].isspace()
                and not sig[-1].isspace()
                and (slot is None or (type(slot) is int and 0 <= slot < 2**63))
                and (ts is None or (type(ts) is int and -(2**63) <= ts < 2**63))
                and (etype is None or type(etype) is str)
                and (source is None or type(source) is str)
                and (payer is None or type(payer) is str)
            ):
                row = (sig, etype, source, slot, ts, payer)
        if row is None:
            try:
                f = event_fields(m.value)
            except (EventError, UnicodeDecodeError) as exc:
                dead.append(
                    {
                        "stream_partition": m.partition,
                        "stream_offset": m.offset,
                        "raw": m.value.decode("utf-8", errors="replace"),
                        "error": str(exc),
                    }
                )
                continue
            row = (f.signature, f.event_type, f.source, f.slot, f.event_timestamp, f.fee_payer)
        for name, value in zip(_PARSED, row, strict=True):
            cols[name].append(value)
        good.append(m)
    columns: dict[str, Any] = {
        name: pa.array(values, _PARSED[name]) for name, values in cols.items()
    }
    # orjson accepted these bytes, so they are valid UTF-8 and the cast cannot fail
    columns["payload"] = pa.array([m.value for m in good], pa.binary()).cast(pa.string())
    return _with_positions(columns, good), dead


_PARSED = {
    "signature": pa.string(),
    "event_type": pa.string(),
    "source": pa.string(),
    "slot": pa.int64(),
    "event_timestamp": pa.int64(),
    "fee_payer": pa.string(),
}


def _with_positions(columns: dict[str, Any], messages: list[StreamMessage]) -> pa.Table:
    received = pa.array([m.received_at_us for m in messages], pa.int64())
    columns = dict(columns)
    columns["stream_partition"] = pa.array([m.partition for m in messages], pa.int32())
    columns["stream_offset"] = pa.array([m.offset for m in messages], pa.int64())
    columns["received_at"] = received.cast(pa.timestamp("us")).cast(
        WEBHOOK_EVENTS.schema.field("received_at").type
    )
    return pa.table(columns)


def _dedupe_batch(events: pa.Table) -> pa.Table:
    """First occurrence of each signature in stream order."""
    seen: set[str] = set()
    keep = []
    for i, sig in enumerate(events.column("signature").to_pylist()):
        if sig not in seen:
            seen.add(sig)
            keep.append(i)
    return events if len(keep) == events.num_rows else events.take(keep)


def _drop_existing(snapshot: DeltaTable, events: pa.Table, filesystem: Any) -> pa.Table:
    """Events whose signature the table does not hold yet, looked up in the batch's slot range.

    Only data files whose `slot` statistics overlap the batch's slots are read (and, for
    events without a slot, files that hold slot-less rows).
    """
    if not events.num_rows or snapshot.version() < 1:
        return events
    import pyarrow.compute as pc

    slot = events.column("slot")
    has_null_slot = slot.null_count > 0
    lo, hi = pc.min(slot).as_py(), pc.max(slot).as_py()
    files = pa.table(snapshot.get_add_actions(flatten=True)).to_pydict()
    paths: list[str] = files["path"]
    none = [None] * len(paths)
    mins, maxs = files.get("min.slot", none), files.get("max.slot", none)
    nulls = files.get("null_count.slot", none)
    candidates = set()
    for i, path in enumerate(paths):
        if lo is not None and (mins[i] is None or (mins[i] <= hi and maxs[i] >= lo)):
            candidates.add(path)
        if has_null_slot and nulls[i] != 0:
            candidates.add(path)
    if not candidates:
        return events
    import pyarrow.parquet as pq

    wanted = events.column("signature")
    found: list[Any] = []
    for path in sorted(candidates):
        table = pq.read_table(_unquoted(path), columns=["signature"], filesystem=filesystem)
        found.append(table.filter(pc.is_in(table.column("signature"), value_set=wanted)))
    if not found or not sum(t.num_rows for t in found):
        return events
    existing = pa.concat_tables(found).column("signature").combine_chunks()
    return events.filter(pc.invert(pc.is_in(wanted, value_set=existing)))


def _unquoted(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path.lstrip("/"))


def _finish(events: pa.Table, now: datetime, run_id: str) -> pa.Table:
    """Add the ingest fields and order the columns as the table does."""
    n = events.num_rows
    events = events.append_column(
        "ingested_at", pa.array([now] * n, WEBHOOK_EVENTS.schema.field("ingested_at").type)
    ).append_column("run_id", pa.array([run_id] * n, pa.string()))
    return events.select(WEBHOOK_EVENTS.schema.names).cast(WEBHOOK_EVENTS.schema)


def drain_stream(app: AppContext, limits: DrainLimits) -> DrainResult:
    """`st stream drain`: one stage run draining the configured backend into the lake."""
    from smarttrader_cli.ops.runs import stage_run
    from smarttrader_cli.stream.backend import open_consumer

    config = app.config
    args = {
        "max_messages": limits.max_messages,
        "max_seconds": limits.max_seconds,
        "follow": limits.follow,
        "backend": config.stream.backend,
    }
    with stage_run(app, "stream.drain", args) as run:

        def progress(r: DrainResult) -> None:
            run.rows_in, run.rows_out = r.messages, r.events_written
            log.debug("committed: %d messages, %d events so far", r.messages, r.events_written)

        drainer = Drainer(app.lake, open_consumer(config), config.stream, run.meta, progress)
        result = drainer.run(limits)
        run.rows_in, run.rows_out = result.messages, result.events_written
    return result
