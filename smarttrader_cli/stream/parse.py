"""Helius enhanced-transaction payloads: validation of one event and its bronze fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_SIGNATURE_LENGTH = 128


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
    return EventFields(
        signature=event["signature"].strip(),
        event_type=_opt_str(event, "type"),
        source=_opt_str(event, "source"),
        slot=_opt_int(event, "slot"),
        event_timestamp=_opt_int(event, "timestamp"),
        fee_payer=_opt_str(event, "feePayer"),
        payload=value.decode("utf-8"),
    )


def _opt_str(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or isinstance(value, str):
        return value
    raise EventError(f"{key} is not a string")


def _opt_int(event: dict[str, Any], key: str) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{key} is not an integer")
    if not -(2**63) <= value < 2**63:
        raise EventError(f"{key} is out of range")
    return value
