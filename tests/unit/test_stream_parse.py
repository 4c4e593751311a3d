"""Finding each event's bytes in a webhook body: exactly what was sent, however it was spelled."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smarttrader_cli.stream.parse import EventError, array_elements

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
    assert len(orjson.loads(body)) == len(values)  # the server only splits what orjson read
    assert array_elements(body, len(values)) == encoded


def test_an_empty_array_has_no_elements() -> None:
    assert array_elements(b" [ ] ", 0) == []


def test_an_element_too_deep_for_the_scanner_is_an_event_error() -> None:
    body = b'[{"signature":"a"},' + b"[" * 1000 + b"]" * 1000 + b"]"
    assert len(orjson.loads(body)) == 2
    with pytest.raises(EventError, match="event 1 is nested too deeply"):
        array_elements(body, 2)
