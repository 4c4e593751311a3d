"""Batches of a stream read ahead by a thread while the consumer works on the current one.

A streamed write has two halves that can run at once: the query that produces the next
batches (DuckDB, on its own threads) and deltalake encoding the batch it has. Read in turn,
each waits for the other; read ahead, the query's work overlaps the encoding.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()
_POLL_SECONDS = 0.1  # how often a blocked producer checks that the consumer is still there


def read_ahead(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """`items` in order, up to `depth` of them read ahead by a thread; an error raised by
    `items` is raised here, in its place. Closing the iterator (or dropping it) stops the
    thread after the item it is reading."""
    if depth < 1:
        raise ValueError("depth must be at least 1")
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(_END)

    thread = threading.Thread(target=produce, name="st-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
