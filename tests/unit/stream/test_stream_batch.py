"""batch.py's inline check (the drain's hot path) against parse.event_fields: one rule table,
the same verdict and the same fields on any message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from smarttrader_cli.stream import batch as batch_module
from smarttrader_cli.stream.backend import StreamMessage
from smarttrader_cli.stream.batch import prepare
from smarttrader_cli.stream.parse import (
    FIELDS,
    INT64_MAX,
    INT64_MIN,
    MAX_SIGNATURE_LENGTH,
    EventError,
    event_fields,
)

EDGE_INTS = [0, -1, INT64_MIN, INT64_MAX, INT64_MIN - 1, INT64_MAX + 1, 2**64 - 1, 2**64]
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)
SIGNATURES = st.one_of(
    st.text(alphabet=" \t\nab", min_size=1, max_size=4),  # padded, blank, or plain
    st.text(max_size=4),
    st.sampled_from(["", "s" * MAX_SIGNATURE_LENGTH, "s" * (MAX_SIGNATURE_LENGTH + 1)]),
    ANY_VALUE,
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A JSON value shaped like a Helius event, often not quite one: each part is most
    often well-formed, so that one odd part at a time is what gets tried."""
    if draw(st.integers(0, 19)) == 0:
        return draw(ANY_VALUE)
    event: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        event["signature"] = draw(SIGNATURES)
    for key, _name, kind in FIELDS:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            event[key] = draw(ANY_VALUE)
        elif choice == 1:
            event[key] = draw(st.sampled_from([*EDGE_INTS, True, 1.0, "1"]))
        elif choice <= 5:
            event[key] = draw(st.one_of(st.none(), well_formed(kind)))
    return event


def well_formed(kind: type) -> st.SearchStrategy[Any]:
    if kind is str:
        return st.text(max_size=12)
    return st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from([INT64_MIN, INT64_MAX]))


def encoded(value: Any) -> st.SearchStrategy[bytes]:
    # json, not orjson: it writes integers past 64 bits too.
    text = json.dumps(value).encode()
    return st.sampled_from([text, text, text + b" ", text[:-1]])


@settings(max_examples=1000, deadline=None)
@given(events().flatmap(encoded))
@example(b'{"signature": "ab "}')
@example(b'{"signature": "\\tab"}')
@example(b'{"signature": "ab", "slot": 9223372036854775808}')
@example(b'{"signature": "ab", "timestamp": -9223372036854775808, "slot": true}')
@example(b'{"signature": "ab", "feePayer": 1, "type": "SWAP"}')
def test_a_message_is_stored_exactly_as_event_fields_says(value: bytes) -> None:
    prepared = prepare([StreamMessage(3, 7, None, value, 1_700_000_000_000_000)])
    try:
        expected = event_fields(value)
    except (EventError, UnicodeDecodeError) as exc:
        assert prepared.events.num_rows == 0 and prepared.events_total == 0
        assert [d["error"] for d in prepared.dead] == [str(exc)]
        return
    assert not prepared.dead and prepared.events_total == 1
    row = prepared.events.to_pylist()[0]
    assert row["signature"] == expected.signature and row["payload"] == expected.payload
    assert {name: row[name] for _key, name, _kind in FIELDS} == {
        name: getattr(expected, name) for _key, name, _kind in FIELDS
    }


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="abc123", min_size=1, max_size=MAX_SIGNATURE_LENGTH),
    st.fixed_dictionaries(
        {},
        optional={key: st.one_of(st.none(), well_formed(kind)) for key, _name, kind in FIELDS},
    ),
)
def test_well_formed_events_never_leave_the_inline_check(
    signature: str, fields: dict[str, Any]
) -> None:
    """The comparison above is not won by always falling back to event_fields."""
    value = json.dumps({"signature": signature, **fields}).encode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module, "event_fields", _unexpected)
        prepared = prepare([StreamMessage(0, 0, None, value, None)])
    assert prepared.events.num_rows == 1 and not prepared.dead


def _unexpected(value: bytes) -> Any:
    raise AssertionError(f"the inline check sent a well-formed event to event_fields: {value!r}")
