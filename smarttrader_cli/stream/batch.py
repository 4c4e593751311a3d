"""One batch of stream messages as bronze rows: parsed, deduplicated within the batch,
dead letters set apart, the offsets it spans."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import StreamMessage
from smarttrader_cli.stream.parse import (
    FIELDS,
    INT64_MAX,
    INT64_MIN,
    MAX_SIGNATURE_LENGTH,
    EventError,
    event_fields,
)

_KEYS = tuple(key for key, _name, _kind in FIELDS)
_INT_AT = tuple(i for i, (_key, _name, kind) in enumerate(FIELDS) if kind is int)
# Every tuple of value types the fields may have: each one its kind, or absent (None).
_TYPES = frozenset(itertools.product(*((type(None), kind) for _key, _name, kind in FIELDS)))


@dataclass
class Prepared:
    """A parsed batch waiting for its commit."""

    messages: int
    events: pa.Table  # unique signatures, stream order
    events_total: int  # well-formed events including repeats within the batch
    dead: list[dict[str, Any]]
    first: dict[int, int]  # first offset per partition
    last: dict[int, int]  # last offset per partition


def prepare(batch: list[StreamMessage]) -> Prepared:
    """What needs no table access: parse, dedupe within the batch, the offsets."""
    events, total, dead = _split(batch)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for m in batch:
        if m.offset > last.get(m.partition, -1):
            last[m.partition] = m.offset
        if m.partition not in first or m.offset < first[m.partition]:
            first[m.partition] = m.offset
    return Prepared(len(batch), events, total, dead, first, last)


def _split(batch: list[StreamMessage]) -> tuple[pa.Table, int, list[dict[str, Any]]]:
    """The batch's events as columns (first occurrence per signature), their count with
    repeats, and the dead letters.

    The common, well-formed event is checked inline against parse.FIELDS (this loop is the
    drain's hot path: the types are checked as one tuple); anything unusual goes through
    `event_fields`, which also names what is wrong.
    """
    sigs: list[str] = []
    rows: list[tuple[Any, ...]] = []  # the FIELDS values of each event kept
    good: list[StreamMessage] = []
    dead: list[dict[str, Any]] = []
    seen: set[str] = set()
    total = 0
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for m in batch:
        if m.problem is not None:  # the stream could not read this record intact
            dead.append(_dead_letter(m, m.problem))
            continue
        try:
            event = loads(m.value)
        except decode_error:
            event = None
        if type(event) is dict:
            get = event.get
            sig = get("signature")
            values = tuple(map(get, _KEYS))
            if (
                type(sig) is str
                and 0 < len(sig) <= MAX_SIGNATURE_LENGTH
                and not sig[0].isspace()
                and not sig[-1].isspace()
                and tuple(map(type, values)) in _TYPES
                and all(INT64_MIN <= v <= INT64_MAX for v in _ints(values))
            ):
                total += 1
                if sig not in seen:
                    seen.add(sig)
                    sigs.append(sig)
                    rows.append(values)
                    good.append(m)
                continue
        try:
            f = event_fields(m.value)
        except (EventError, UnicodeDecodeError) as exc:
            dead.append(_dead_letter(m, str(exc)))
            continue
        total += 1
        if f.signature not in seen:
            seen.add(f.signature)
            sigs.append(f.signature)
            rows.append(tuple(getattr(f, name) for _key, name, _kind in FIELDS))
            good.append(m)
    columns: dict[str, Any] = {"signature": pa.array(sigs, pa.string())}
    by_field = list(zip(*rows, strict=True)) if rows else [()] * len(FIELDS)
    for (_key, name, kind), values in zip(FIELDS, by_field, strict=True):
        columns[name] = pa.array(values, pa.string() if kind is str else pa.int64())
    # orjson accepted these bytes, so they are valid UTF-8 and the cast cannot fail
    columns["payload"] = pa.array([m.value for m in good], pa.binary()).cast(pa.string())
    return _with_positions(columns, good), total, dead


def _ints(values: tuple[Any, ...]) -> list[int]:
    """The integer fields' values that are present."""
    return [values[i] for i in _INT_AT if values[i] is not None]


def _dead_letter(m: StreamMessage, error: str) -> dict[str, Any]:
    return {
        "stream_partition": m.partition,
        "stream_offset": m.offset,
        "raw": m.value.decode("utf-8", errors="replace"),
        "error": error,
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


def finish(events: pa.Table, now: datetime, run_id: str) -> pa.Table:
    """Add the ingest fields and order the columns as the table does."""
    n = events.num_rows
    events = events.append_column(
        "ingested_at", pa.array([now] * n, WEBHOOK_EVENTS.schema.field("ingested_at").type)
    ).append_column("run_id", pa.array([run_id] * n, pa.string()))
    # (the partition column is derived from received_at by Lake.conform, as it writes)
    derived = dict(WEBHOOK_EVENTS.dates_of)
    schema = pa.schema([f for f in WEBHOOK_EVENTS.schema if f.name not in derived])
    return events.select(schema.names).cast(schema)
