"""Append-only segment files with length + CRC framing: the local log's and the spool's storage.

A log is a directory of segment files named by the offset of their first record
(`00000000000000000000.seg`). Each record is framed as `>II` (body length, CRC32 of
the body) followed by the body; a record's offset is its index in the log. A writer
that died mid-write leaves a torn frame at the tail: the next writer truncates it, and
readers treat an incomplete or not-yet-valid frame at the tail of the last segment as
"nothing more yet".
"""

from __future__ import annotations

import itertools
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from smarttrader_cli.errors import StError

FRAME = struct.Struct(">II")
SUFFIX = ".seg"
READ_CHUNK = 4 << 20


class LogCorruptError(StError):
    """A complete record inside the log failed its CRC check."""


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Base offsets of the segments in a log directory, ascending."""
    if not directory.is_dir():
        return []
    bases = []
    for entry in os.scandir(directory):
        if entry.name.endswith(SUFFIX) and entry.name[: -len(SUFFIX)].isdigit():
            bases.append(int(entry.name[: -len(SUFFIX)]))
    return sorted(bases)


def frame(body: bytes) -> bytes:
    """One record as stored: header plus body."""
    return FRAME.pack(len(body), zlib.crc32(body)) + body


def scan_valid(path: Path) -> tuple[int, int]:
    """(records, valid byte length) of a segment: where the first torn or bad frame starts."""
    records = 0
    valid = 0
    with path.open("rb") as f:
        data = b""
        pos = 0
        while True:
            if len(data) - pos < FRAME.size or _need_more(data, pos):
                chunk = f.read(READ_CHUNK)
                if not chunk:
                    break
                data = data[pos:] + chunk
                pos = 0
                continue
            length, crc = FRAME.unpack_from(data, pos)
            end = pos + FRAME.size + length
            if zlib.crc32(data[pos + FRAME.size : end]) != crc:
                break
            records += 1
            valid += FRAME.size + length
            pos = end
    return records, valid


def _need_more(data: bytes, pos: int) -> bool:
    length, _ = FRAME.unpack_from(data, pos)
    return len(data) - pos < FRAME.size + length


class SegmentWriter:
    """Appends framed records to the newest segment, rolling at `segment_bytes`."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = max(segment_bytes, 4096)
        directory.mkdir(parents=True, exist_ok=True)
        bases = list_segments(directory)
        if not bases:
            self._base = 0
            self._records = 0
            self._size = 0
        else:
            self._base = bases[-1]
            path = directory / segment_name(self._base)
            self._records, self._size = scan_valid(path)
            if path.stat().st_size != self._size:  # torn tail of a writer that died
                with path.open("r+b") as f:
                    f.truncate(self._size)
                    os.fsync(f.fileno())
        self._fd = os.open(
            directory / segment_name(self._base), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        if not bases:
            _fsync_dir(directory)

    @property
    def next_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._base + self._records

    def append(self, bodies: Sequence[bytes], sync: bool = True) -> int:
        """Append records (fsynced unless `sync=False`); returns the offset of the first one."""
        first = self.next_offset
        buf: list[bytes] = []
        size = 0
        for body in bodies:
            if self._size + size >= self.segment_bytes and (self._records or buf):
                self._write(buf, size)
                buf, size = [], 0
                self._roll()
            framed = frame(body)
            buf.append(framed)
            size += len(framed)
        self._write(buf, size)
        if sync:
            os.fsync(self._fd)
        return first

    def sync(self) -> None:
        os.fsync(self._fd)

    def fileno(self) -> int:
        """The open segment's descriptor (it changes when the writer rolls)."""
        return self._fd

    def _write(self, buf: list[bytes], size: int) -> None:
        if not buf:
            return
        data = b"".join(buf)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._records += len(buf)
        self._size += size

    def _roll(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._base = self.next_offset
        self._records = 0
        self._size = 0
        self._fd = os.open(
            self.directory / segment_name(self._base),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        _fsync_dir(self.directory)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


class SegmentReader:
    """Reads records from an offset on, following new segments as the writer rolls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: BinaryIO | None = None
        self._base = 0
        self._next = 0
        self._buf = b""
        self._pos = 0
        self._buf_at = 0  # file offset of self._buf[0]

    @property
    def position(self) -> int:
        """The offset of the next record `read` returns."""
        return self._next

    def seek(self, offset: int) -> None:
        """Position at `offset` (clamped to the first offset still on disk)."""
        self._close()
        bases = list_segments(self.directory)
        self._next = offset
        if not bases:
            return
        candidates = [b for b in bases if b <= offset]
        base = candidates[-1] if candidates else bases[0]
        self._open(base)
        if offset < base:
            self._next = base
            return
        skipped = 0
        while skipped < offset - base and self._next_body() is not None:
            skipped += 1
        self._next = base + skipped

    def read(self, max_records: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Up to `max_records` records (and about `max_bytes`) from the current position."""
        first, bodies = self.read_bodies(max_records, max_bytes)
        return list(zip(range(first, first + len(bodies)), bodies, strict=True))

    def read_bodies(self, max_records: int, max_bytes: int) -> tuple[int, list[bytes]]:
        """Like `read`, as the offset of the first record and the bodies (consecutive offsets)."""
        first = self._next
        out: list[bytes] = []
        size = 0
        if self._file is None:
            self.seek(self._next)
            first = self._next
            if self._file is None:
                return first, out
        unpack, crc32, header = FRAME.unpack_from, zlib.crc32, FRAME.size
        while len(out) < max_records and size < max_bytes:
            # Fast path: complete, valid frames already buffered (the hot loop of a drain).
            buf, pos, end = self._buf, self._pos, len(self._buf)
            taken = len(out)
            while taken < max_records and size < max_bytes and end - pos >= header:
                length, crc = unpack(buf, pos)
                start = pos + header
                stop = start + length
                if stop > end:
                    break
                body = buf[start:stop]
                if crc32(body) != crc:
                    break
                out.append(body)
                taken += 1
                size += length
                pos = stop
            self._next = first + taken
            self._pos = pos
            if taken >= max_records or size >= max_bytes:
                break
            # Slow path: refill, a torn or in-flight tail, corruption, the next segment.
            slow = self._next_body()
            if slow is None:
                if not self._advance_segment():
                    break
                continue
            out.append(slow)
            self._next += 1
            size += len(slow)
        return first, out

    def _next_body(self) -> bytes | None:
        """The next complete, valid body in the open segment, or None at its (current) end."""
        assert self._file is not None
        while True:
            avail = len(self._buf) - self._pos
            if avail >= FRAME.size:
                length, crc = FRAME.unpack_from(self._buf, self._pos)
                if avail >= FRAME.size + length:
                    start = self._pos + FRAME.size
                    body = self._buf[start : start + length]
                    if zlib.crc32(body) == crc:
                        self._pos = start + length
                        return body
                    if not self._is_last_segment() and not self._frame_in_flight(length, crc):
                        raise LogCorruptError(f"corrupt record {self._next} in {self.directory}")
                    self._rewind()
                    return None
            chunk = self._file.read(READ_CHUNK)
            if not chunk:
                self._rewind()
                return None
            self._buf_at += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0

    def _frame_in_flight(self, length: int, crc: int) -> bool:
        """Re-read a frame that failed its CRC: a concurrent write may have been half-seen."""
        assert self._file is not None
        at = self._buf_at + self._pos + FRAME.size
        body = os.pread(self._file.fileno(), length, at)
        return len(body) == length and zlib.crc32(body) == crc

    def _rewind(self) -> None:
        """Forget a partial frame so the next read sees it afresh from disk."""
        assert self._file is not None
        self._buf_at += self._pos
        self._file.seek(self._buf_at)
        self._buf = b""
        self._pos = 0

    def remaining(self) -> int:
        """Complete records after the current position (walks frame headers, no CRC)."""
        if self._file is None:
            return max(0, end_offset(self.directory) - self._next)
        count = 0
        at = self._buf_at + self._pos
        bases = [b for b in list_segments(self.directory) if b >= self._base]
        for i, base in enumerate(bases):
            count += _count_frames(self.directory / segment_name(base), at if i == 0 else 0)
        return count

    def _is_last_segment(self) -> bool:
        bases = list_segments(self.directory)
        return not bases or bases[-1] == self._base

    def _advance_segment(self) -> bool:
        """Move to the segment starting at the current offset, if the writer rolled to it."""
        if self._next == self._base or not (self.directory / segment_name(self._next)).exists():
            return False
        self._close()
        self._open(self._next)
        return True

    def _open(self, base: int) -> None:
        self._file = (self.directory / segment_name(base)).open("rb", buffering=0)
        self._base = base
        self._buf = b""
        self._pos = 0
        self._buf_at = 0

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._buf = b""
        self._pos = 0
        self._buf_at = 0

    def close(self) -> None:
        self._close()


def _count_frames(path: Path, start: int) -> int:
    """Complete frames from byte `start` on, by their headers alone."""
    count = 0
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        at = start
        while at + FRAME.size <= size:
            length, _ = FRAME.unpack(os.pread(fd, FRAME.size, at))
            if at + FRAME.size + length > size:
                break
            at += FRAME.size + length
            count += 1
    finally:
        os.close(fd)
    return count


def end_offset(directory: Path) -> int:
    """The offset after the last complete record (the high watermark)."""
    bases = list_segments(directory)
    if not bases:
        return 0
    records, _ = scan_valid(directory / segment_name(bases[-1]))
    return bases[-1] + records


def delete_before(directory: Path, offset: int) -> int:
    """Delete segments whose every record is below `offset`; returns how many were deleted."""
    bases = list_segments(directory)
    deleted = 0
    for base, next_base in itertools.pairwise(bases):
        if next_base <= offset:
            (directory / segment_name(base)).unlink(missing_ok=True)
            deleted += 1
    if deleted:
        _fsync_dir(directory)
    return deleted


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
