"""One batch of stream messages as bronze rows: parsed, deduplicated within the batch,
dead letters set apart, the offsets it spans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import StreamMessage
from smarttrader_cli.stream.parse import MAX_SIGNATURE_LENGTH, EventError, event_fields


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

    The common, well-formed event is checked inline (this loop is the drain's hot path);
    anything unusual goes through `event_fields`, which also names what is wrong.
    """
    sigs: list[str] = []
    types: list[str | None] = []
    sources: list[str | None] = []
    slots: list[int | None] = []
    stamps: list[int | None] = []
    payers: list[str | None] = []
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
            sig, slot, ts = get("signature"), get("slot"), get("timestamp")
            etype, source, payer = get("type"), get("source"), get("feePayer")
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
                total += 1
                if sig not in seen:
                    seen.add(sig)
                    sigs.append(sig)
                    types.append(etype)
                    sources.append(source)
                    slots.append(slot)
                    stamps.append(ts)
                    payers.append(payer)
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
            types.append(f.event_type)
            sources.append(f.source)
            slots.append(f.slot)
            stamps.append(f.event_timestamp)
            payers.append(f.fee_payer)
            good.append(m)
    columns: dict[str, Any] = {
        "signature": pa.array(sigs, pa.string()),
        "event_type": pa.array(types, pa.string()),
        "source": pa.array(sources, pa.string()),
        "slot": pa.array(slots, pa.int64()),
        "event_timestamp": pa.array(stamps, pa.int64()),
        "fee_payer": pa.array(payers, pa.string()),
        # orjson accepted these bytes, so they are valid UTF-8 and the cast cannot fail
        "payload": pa.array([m.value for m in good], pa.binary()).cast(pa.string()),
    }
    return _with_positions(columns, good), total, dead


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
    return events.select(WEBHOOK_EVENTS.schema.names).cast(WEBHOOK_EVENTS.schema)
