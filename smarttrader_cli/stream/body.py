"""A webhook body's events: each one parsed, and its bytes exactly as they were sent.

The stream stores what Helius sent, not a re-encoding of it: orjson would turn integers
past 64 bits into floats and rewrite number spellings, escapes and spacing, and it
refuses to re-encode past 254 levels of nesting although it parses 1024. orjson gives
no offsets, so the body is cut into its elements here, two ways:

- fast, for an array of objects that begin with the same key (Helius writes its fields
  in one order): cut before every `}, {"<that key>"` and parse each piece with orjson.
  When every piece parses, the cuts were exactly the elements' bounds: a piece cut inside
  an element or inside a string is never valid JSON, nor is one holding two elements.
- otherwise orjson judges the whole body, and the stdlib's C scanner, which returns where
  each value ends, finds the elements.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import orjson

JSON_WHITESPACE = b" \t\n\r"
_WS = rb"[ \t\n\r]*"
_FIRST_KEY = re.compile(_WS + rb"\[" + _WS + rb"(\{)" + _WS + rb'("(?:[^"\\]|\\.)*")')
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# One JSON value from an offset, and the offset where it ends (every JSONDecoder has
# it, though typeshed leaves it out).
_SCAN_VALUE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class BodyError(ValueError):
    """A body that cannot be stored; `reason` is the rejection's metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def body_events(body: bytes) -> tuple[list[Any], list[bytes]]:
    """The elements of a JSON array body, parsed by orjson, and each one's bytes as sent.

    A body that is one JSON object is one event: Helius posts arrays, but a single
    enhanced transaction (a test delivery, a replay by hand) is unambiguous, and refusing
    it would have its sender retry a 422 that can never succeed.
    """
    split = _split_objects(body)
    if split is not None:
        return split
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError("invalid_json", f"body is not valid JSON: {exc}") from None
    if isinstance(payload, dict):
        return [payload], [body.strip(JSON_WHITESPACE)]
    if not isinstance(payload, list):
        raise BodyError("not_a_list", "body must be a JSON array of events (or one event object)")
    return payload, array_elements(body, len(payload))


def _split_objects(body: bytes) -> tuple[list[Any], list[bytes]] | None:
    """The fast way (module docstring), or None when it does not apply."""
    first = _FIRST_KEY.match(body)
    end = _last_non_space(body, len(body))
    if first is None or end < 0 or body[end] != ord("]"):
        return None
    end = _last_non_space(body, end) + 1  # just past the last element
    start = first.start(1)
    pieces = []
    if body.count(first[2], start, end) > 1:  # else there is no second element to cut at
        for cut in _cuts_before(first[2]).finditer(body, start, end):
            pieces.append(body[start : cut.start() + 1])
            start = cut.end()
    pieces.append(body[start:end])
    try:
        return [orjson.loads(piece) for piece in pieces], pieces
    except orjson.JSONDecodeError:
        return None


@functools.lru_cache(maxsize=32)
def _cuts_before(key: bytes) -> re.Pattern[bytes]:
    """Where one element ends and the next, beginning with `key`, starts."""
    return re.compile(rb"\}" + _WS + b"," + _WS + rb"(?=\{" + _WS + re.escape(key) + b")")


def _last_non_space(body: bytes, before: int) -> int:
    i = before - 1
    while i >= 0 and body[i] in JSON_WHITESPACE:
        i -= 1
    return i


def array_elements(body: bytes, count: int) -> list[bytes]:
    """The bytes of each of the `count` elements of an array orjson has already parsed."""
    text = body.decode("utf-8")
    ascii_only = len(text) == len(body)  # then character offsets are byte offsets
    elements: list[bytes] = []
    pos = _past_whitespace(text, 0) + 1  # past "["
    for i in range(count):
        start = _past_whitespace(text, pos)
        try:
            end = _SCAN_VALUE(text, start)[1]
        except RecursionError:
            raise BodyError("invalid_event", f"event {i} is nested too deeply to store") from None
        elements.append(body[start:end] if ascii_only else text[start:end].encode("utf-8"))
        pos = _past_whitespace(text, end)
        if text[pos : pos + 1] != ("]" if i == count - 1 else ","):  # never expected
            raise BodyError("invalid_json", f"event {i} does not end where orjson ended it")
        pos += 1
    return elements


def _past_whitespace(text: str, pos: int) -> int:
    run = _WHITESPACE.match(text, pos)
    assert run is not None  # the pattern matches the empty string too
    return run.end()
