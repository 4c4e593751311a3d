"""A webhook body's events and each one's bytes: exactly what was sent, however spelled."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smarttrader_cli.stream.body import BodyError, _split_objects, array_elements, body_events

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**40), 10**40)  # far past 64 bits: orjson would make them floats
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),  # quotes, backslashes, brackets, non-ASCII, control characters
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)
gaps = st.text(alphabet=" \t\n\r", max_size=3).map(str.encode)


@given(
    values=st.lists(json_values, min_size=1, max_size=6),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
    gap=gaps,
)
def test_each_element_is_its_bytes_in_the_body(
    values: list[object],
    ascii_only: bool,
    indent: int | None,
    separators: tuple[str, str],
    gap: bytes,
) -> None:
    encoded = [
        json.dumps(v, ensure_ascii=ascii_only, indent=indent, separators=separators).encode()
        for v in values
    ]
    body = b"[" + gap + (gap + b"," + gap).join(encoded) + gap + b"]" + gap
    assert len(orjson.loads(body)) == len(values)  # the slow way splits what orjson read
    assert array_elements(body, len(values)) == encoded
    payload, raw = body_events(body)  # the fast way when it applies, else the slow one
    assert raw == encoded
    assert payload == orjson.loads(body)


@given(
    events=st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=4), max_size=6),
    first=st.sampled_from(["signature", '}, {"signature"', "a"]),
    gap=gaps,
)
def test_arrays_of_objects_with_one_first_key_are_split_exactly(
    events: list[dict[str, object]], first: str, gap: bytes
) -> None:
    head = b"{" + gap + json.dumps(first).encode() + b": 0"
    encoded = [head + (b", " + json.dumps(e).encode()[1:] if e else b"}") for e in events]
    body = gap + b"[" + gap + (gap + b"," + gap).join(encoded) + gap + b"]"
    assert body_events(body) == (orjson.loads(body), encoded)


def test_the_fast_way_takes_the_bodies_helius_sends() -> None:
    events = [
        b'{"description":"a","x":[{"description":"nested"},{"b":1}]}',
        b'{"description":"}, {\\"description\\": [1]}"}',  # a quote in a string is escaped
        b'{"description":"b"}',
    ]
    body = b"[" + b",".join(events) + b"]"
    assert _split_objects(body) == (orjson.loads(body), events)


@pytest.mark.parametrize(
    "body",
    [
        b'[{"k":[{"k":1}, {"k":2}]}, {"k":3}]',  # and inside a nested array
        b'[{"k":1}, {"other":2}]',  # first keys that differ
        b'[{"k":1}, 5]',  # not only objects
    ],
)
def test_bodies_the_fast_way_cannot_cut_are_split_the_slow_way(body: bytes) -> None:
    assert _split_objects(body) is None
    payload, raw = body_events(body)
    assert payload == orjson.loads(body)
    assert b"[" + b", ".join(raw) + b"]" == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "invalid_json"),
        (b'[{"k":1},]', "invalid_json"),
        (b'[{"k":1}] x', "invalid_json"),
        (b'"k"', "not_a_list"),
        (b"5", "not_a_list"),
    ],
)
def test_bodies_that_are_not_arrays_are_body_errors(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as caught:
        body_events(body)
    assert caught.value.reason == reason


def test_an_empty_array_has_no_elements() -> None:
    assert array_elements(b" [ ] ", 0) == []


def test_an_element_too_deep_for_the_slow_way_is_a_body_error() -> None:
    body = b'[{"signature":"a"},' + b"[" * 1000 + b"]" * 1000 + b"]"
    assert len(orjson.loads(body)) == 2
    with pytest.raises(BodyError, match="event 1 is nested too deeply") as caught:
        body_events(body)
    assert caught.value.reason == "invalid_event"


def test_a_body_of_one_object_is_one_event_with_its_bytes_as_sent() -> None:
    body = b' \n{"signature": "a", "n": 123456789012345678901234567890}\n'
    payload, raw = body_events(body)
    assert payload == [orjson.loads(body)]
    assert raw == [b'{"signature": "a", "n": 123456789012345678901234567890}']
