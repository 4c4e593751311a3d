"""The webhook server's spool: events fsynced locally while the broker is unreachable.

A single segment log (segments.py framing, local_log.py record format) plus a cursor
file holding the offset of the first record not yet acknowledged by the broker. The
re-publisher reads from the cursor in order, and the cursor moves (and fully published
segments are deleted) only after the broker acknowledged. A crash between the broker's
ack and the cursor move republishes those records once more; the drain drops the
repeated signatures, so nothing is lost and nothing reaches the table twice.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from smarttrader_cli.errors import StError
from smarttrader_cli.stream.backend import OutboundEvent, StreamMessage
from smarttrader_cli.stream.local_log import decode, encode
from smarttrader_cli.stream.segments import SegmentReader, SegmentWriter, delete_before

CURSOR = "cursor"


class Spool:
    """Append-only, fsynced, read and acknowledged in order; one server process at a time."""

    def __init__(self, directory: str | Path, segment_bytes: int = 16 << 20) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StError(f"another webhook server uses the spool {self.directory}") from None
        self._mutex = threading.Lock()
        self._writer = SegmentWriter(self.directory, segment_bytes)
        self._cursor = self._read_cursor()
        self._reader = SegmentReader(self.directory)
        self._reader.seek(self._cursor)

    def _read_cursor(self) -> int:
        path = self.directory / CURSOR
        try:
            return int(path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    @property
    def depth(self) -> int:
        """Events spooled and not yet acknowledged by the broker."""
        return max(0, self._writer.next_offset - self._cursor)

    def append(self, events: Sequence[OutboundEvent]) -> None:
        """Write and fsync; returns only once the events survive a crash."""
        with self._mutex:
            self._writer.append([encode(e) for e in events], sync=True)

    def pending(self, max_records: int, max_bytes: int = 8 << 20) -> list[StreamMessage]:
        """The oldest unacknowledged events, in order (re-read from the cursor each time)."""
        with self._mutex:
            if self._reader.position != self._cursor:
                self._reader.seek(self._cursor)
            records = self._reader.read(max_records, max_bytes)
        return [decode(0, offset, body) for offset, body in records]

    def ack(self, next_offset: int) -> None:
        """Everything before `next_offset` reached the broker: move the cursor durably."""
        with self._mutex:
            tmp = self.directory / f"{CURSOR}.tmp"
            with tmp.open("w") as f:
                f.write(str(next_offset))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / CURSOR)
            self._cursor = next_offset
            self._reader.seek(next_offset)
            delete_before(self.directory, next_offset)

    def close(self) -> None:
        with self._mutex:
            self._writer.close()
            self._reader.close()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1
