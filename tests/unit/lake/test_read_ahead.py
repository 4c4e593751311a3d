"""lake/read_ahead.py: a stream read ahead by a thread keeps its order, errors and end."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from smarttrader_cli.lake.read_ahead import read_ahead


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead([])) == []


def test_an_error_of_the_source_is_raised_in_its_place() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken source")

    seen = []
    with pytest.raises(ValueError, match="broken source"):
        for item in read_ahead(source(), depth=1):
            seen.append(item)
    assert seen == [1, 2]


def test_reads_at_most_depth_ahead_and_stops_when_closed() -> None:
    produced: list[int] = []
    lock = threading.Lock()

    def source() -> Iterator[int]:
        for i in range(10_000):
            with lock:
                produced.append(i)
            yield i

    it = read_ahead(source(), depth=2)
    assert next(it) == 0
    it.close()  # joins the thread: it read no more than the queue held, plus one in hand
    assert len(produced) <= 1 + 2 + 1
    assert not [t for t in threading.enumerate() if t.name == "st-read-ahead"]


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError):
        next(read_ahead([1], depth=0))
