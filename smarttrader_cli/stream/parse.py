"""Helius enhanced-transaction payloads: validation of one event and its bronze fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_SIGNATURE_LENGTH = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# The rules for what bronze.webhook_events keeps of an event besides its signature and
# payload, each optional (null when absent): (key in the event, EventFields attribute and
# column, JSON type; integers are 64-bit). event_fields and the drain's inline check in
# batch.py both read them.
FIELDS: tuple[tuple[str, str, type], ...] = (
    ("type", "event_type", str),
    ("source", "source", str),
    ("slot", "slot", int),
    ("timestamp", "event_timestamp", int),
    ("feePayer", "fee_payer", str),
)


class EventError(ValueError):
    """An event that cannot be stored as a webhook event (the reason is the message)."""


@dataclass(frozen=True)
class EventFields:
    """What bronze.webhook_events extracts from one event besides the raw payload."""

    signature: str
    event_type: str | None
    source: str | None
    slot: int | None
    event_timestamp: int | None
    fee_payer: str | None
    payload: str


def signature_problem(event: Any) -> str | None:
    """Why an event has no usable `signature` (None when it has one)."""
    if not isinstance(event, dict):
        return "event is not a JSON object"
    sig = event.get("signature")
    if sig is None:
        return "event has no signature"
    if not isinstance(sig, str) or not sig.strip():
        return "signature is not a non-empty string"
    if len(sig) > MAX_SIGNATURE_LENGTH:
        return f"signature is longer than {MAX_SIGNATURE_LENGTH} characters"
    return None


def event_fields(value: bytes) -> EventFields:
    """Parse one stream message value into bronze fields; EventError says why it cannot be."""
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not valid JSON: {exc}") from None
    problem = signature_problem(event)
    if problem:
        raise EventError(problem)
    fields = {name: _optional(event, key, kind) for key, name, kind in FIELDS}
    return EventFields(
        signature=event["signature"].strip(), payload=value.decode("utf-8"), **fields
    )


def _optional(event: dict[str, Any], key: str, kind: type) -> Any:
    value = event.get(key)
    if value is None:
        return None
    if kind is str:
        if not isinstance(value, str):
            raise EventError(f"{key} is not a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{key} is not an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise EventError(f"{key} is out of range")
    return value
