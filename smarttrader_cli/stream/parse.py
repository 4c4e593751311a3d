"""Helius enhanced-transaction payloads: validation of one event, its bytes, its bronze fields."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

MAX_SIGNATURE_LENGTH = 128
JSON_WHITESPACE = b" \t\n\r"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# The stdlib's C scanner: one JSON value from an offset, and the offset where it ends
# (an attribute every JSONDecoder has, though typeshed leaves it out).
_SCAN_VALUE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


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


def array_elements(body: bytes, count: int) -> list[bytes]:
    """The bytes of each element of a JSON array, exactly as received.

    `body` is an array of `count` elements that orjson has already parsed: orjson judges
    validity, this only finds where each element starts and ends. Re-encoding the parsed
    events is not lossless (integers past 64 bits turn into floats, number spellings,
    escapes and spacing change) and orjson gives no offsets, so one element is the array
    without its brackets, and more are walked with the stdlib's C scanner, which returns
    each value's end. EventError when an element is too deeply nested for that scanner.
    """
    if count == 1:
        return [body.strip(JSON_WHITESPACE)[1:-1].strip(JSON_WHITESPACE)]
    text = body.decode("utf-8")
    ascii_only = len(text) == len(body)  # then character offsets are byte offsets
    elements: list[bytes] = []
    pos = _past_whitespace(text, 0) + 1  # past "["
    for i in range(count):
        start = _past_whitespace(text, pos)
        try:
            end = _SCAN_VALUE(text, start)[1]
        except RecursionError:
            raise EventError(f"event {i} is nested too deeply to store") from None
        elements.append(body[start:end] if ascii_only else text[start:end].encode("utf-8"))
        pos = _past_whitespace(text, end)
        if text[pos : pos + 1] != ("]" if i == count - 1 else ","):
            raise EventError(f"event {i} does not end where orjson ended it")  # never expected
        pos += 1
    return elements


def _past_whitespace(text: str, pos: int) -> int:
    run = _WHITESPACE.match(text, pos)
    assert run is not None  # the pattern matches the empty string too
    return run.end()


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
