"""Append-only segment files of checksummed records: the local log's and the spool's storage.

A log is a directory of segment files named by the offset of their first record
(`00000000000000000000.seg`); a record's offset is its index in the log. How records are
framed, in this version's format and in the one before, is frames.py. A segment appears
with its file header already in place (written to a temporary name, then renamed).

A writer that died mid-write leaves a torn frame at the tail: the next writer cuts off
whatever follows the last intact record of the newest segment (and says which bytes it
cut), never a record that is intact, whatever damage lies before it. Readers treat bytes
after the last intact record of the newest segment as "nothing more yet", and return a
damaged record, once something intact follows it, as a `Damage` for its offsets.

Each segment has a sparse offset index beside it (segment_index.py), kept by the writer
as it appends and repaired when it reopens the newest segment: a seek and the high
watermark start from the nearest indexed record instead of the segment's first.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from smarttrader_cli.stream import frames, segment_index
from smarttrader_cli.stream.frames import Damage, Segment
from smarttrader_cli.stream.segment_index import IndexWriter, Point

log = logging.getLogger("st.stream.segments")

SUFFIX = ".seg"
READ_CHUNK = 4 << 20


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


def _open_segment(directory: Path, base: int, fd: int) -> Segment:
    bases = list_segments(directory)
    later = [b for b in bases if b > base]
    return Segment(fd, directory / segment_name(base), base, later[0] if later else None)


class SegmentWriter:
    """Appends records to the newest segment, rolling at `segment_bytes`."""

    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self.segment_bytes = max(segment_bytes, 4096)
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        bases = list_segments(directory)
        segment_index.sweep(directory, bases)
        if not bases:
            self._create(0)
            return
        base = bases[-1]
        fmt, next_offset, size, points = self._recover(base)
        if fmt == 2:
            self._base, self._next, self._size = base, next_offset, size
            path = directory / segment_name(base)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._index = IndexWriter(path, base, *points)
        else:  # an older format's segment is left as it is: new records go to a new one
            self._create(next_offset)

    def _recover(self, base: int) -> tuple[int, int, int, tuple[list[Point], bool]]:
        """Cut off a torn tail of the newest segment and make its index agree: (its format,
        next offset, its size, its index entries and whether the index file is stale)."""
        path = self.directory / segment_name(base)
        fd = os.open(path, os.O_RDWR)
        try:
            seg = Segment(fd, path, base, None)
            result = frames.recover(seg)
            for damage in result.damage:
                log.warning("%s: kept for the drain to dead-letter", damage.describe())
            if result.end < seg.size:
                log.warning(
                    "cut off bytes %d-%d of %s: a torn tail (no intact record in it) left "
                    "by a writer that stopped mid-write",
                    result.end, seg.size, path,
                )  # fmt: skip
                os.ftruncate(fd, result.end)
                os.fsync(fd)
            points: tuple[list[Point], bool] = ([], False)
            if seg.fmt == 2:
                seg = Segment(fd, path, base, None)
                points = segment_index.repair(seg, (result.next_offset, result.end))
            return seg.fmt, result.next_offset, result.end, points
        finally:
            os.close(fd)

    @property
    def next_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._next

    def append(self, bodies: Sequence[bytes], sync: bool = True) -> int:
        """Append records (fsynced unless `sync=False`); returns the offset of the first one."""
        first = self._next
        buf: list[bytes] = []
        offset = first
        start = at = self._size  # `at`: the byte the next record starts at
        marks: list[Point] = []  # index entries for the records in `buf`
        mark_at = self._index.last + segment_index.EVERY
        for body in bodies:
            if at >= self.segment_bytes and offset > self._base:
                self._write(buf, at - start, offset, marks)
                buf, marks = [], []
                self._roll()
                start = at = self._size
                mark_at = self._index.last + segment_index.EVERY
            if at >= mark_at:
                marks.append((offset, at))
                mark_at = at + segment_index.EVERY
            framed = frames.encode(offset, body)
            buf.append(framed)
            at += len(framed)
            offset += 1
        self._write(buf, at - start, offset, marks)
        if sync:
            os.fsync(self._fd)
        return first

    def sync(self) -> None:
        os.fsync(self._fd)

    def fileno(self) -> int:
        """The open segment's descriptor (it changes when the writer rolls)."""
        return self._fd

    def _write(self, buf: list[bytes], size: int, next_offset: int, marks: list[Point]) -> None:
        if not buf:
            return
        view = memoryview(b"".join(buf))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._next = next_offset
        self._size += size
        if marks:
            self._index.add(marks)  # after the records they point at, never before

    def _roll(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._index.seal((self._next, self._size))
        self._create(self._next)

    def _create(self, base: int) -> None:
        """Start the segment at `base`, its file header in place before it is visible (and
        an empty index, replacing any left by a segment of that base deleted before)."""
        path = self.directory / segment_name(base)
        self._index = IndexWriter(path, base, [], rewrite=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, frames.FILE_MAGIC)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)  # over an empty format-1 segment of the same base, if any
        _fsync_dir(self.directory)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._base = base
        self._next = base
        self._size = len(frames.FILE_MAGIC)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._index.close()


class SegmentReader:
    """Reads records from an offset on, following new segments as the writer rolls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file: BinaryIO | None = None
        self._fmt = 2
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
        self._next = base
        if offset < base:
            return
        self._jump(offset)
        while self._next < offset:
            _first, bodies, damage = self.read_run(offset - self._next, READ_CHUNK)
            if not bodies and damage is None:
                break

    def _jump(self, offset: int) -> None:
        """Move to the nearest indexed record at or before `offset` in the open segment."""
        assert self._file is not None
        seg = _open_segment(self.directory, self._base, self._file.fileno())
        self._next, at = segment_index.start_for(seg, offset)
        self._skip_to(at)

    def read(self, max_records: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Up to `max_records` intact records (and about `max_bytes`) as (offset, body);
        damaged records are skipped, with an error logged."""
        out: list[tuple[int, bytes]] = []
        size = 0
        while len(out) < max_records and size < max_bytes:
            first, bodies, damage = self.read_run(max_records - len(out), max_bytes - size)
            out.extend(zip(range(first, first + len(bodies)), bodies, strict=True))
            size += sum(map(len, bodies))
            if damage is None:
                break
            log.error("%s: skipped", damage.describe())
        return out

    def read_run(self, max_records: int, max_bytes: int) -> tuple[int, list[bytes], Damage | None]:
        """Intact records from the current position as (offset of the first, bodies), and
        the damaged run that stopped them, if one did (the position is then past it)."""
        first = self._next
        out: list[bytes] = []
        size = 0
        if self._file is None:
            self.seek(self._next)
            first = self._next
            if self._file is None:
                return first, out, None
        while len(out) < max_records and size < max_bytes:
            size += self._fast(out, max_records, max_bytes - size)
            if len(out) >= max_records or size >= max_bytes:
                break
            # Slow path: refill, a torn or in-flight tail, damage, the next segment.
            if self._refill():
                continue
            got = self._inspect()
            if got is None:
                self._rewind()
                if not self._advance_segment():
                    break
                continue
            if isinstance(got, Damage):
                self._skip_to(got.end)
                self._next += got.count
                if got.count:
                    return first, out, got
                log.warning("%s: skipped (no record was lost)", got.describe())
                continue
            body, end = got
            out.append(body)
            self._next += 1
            size += len(body)
            self._skip_to(end)
        return first, out, None

    def _fast(self, out: list[bytes], max_records: int, max_bytes: int) -> int:
        """Take the complete, intact records already buffered; their bytes."""
        before = len(out)
        self._pos, size = frames.take(
            self._fmt, self._buf, self._pos, self._next, out, max_records, max_bytes
        )
        self._next += len(out) - before
        return size

    def _refill(self) -> bool:
        """Read on if the next record is not wholly buffered and the file holds more."""
        assert self._file is not None
        avail = len(self._buf) - self._pos
        need = frames.frame_size(self._fmt, self._buf, self._pos)
        if avail >= need:
            return False  # buffered in full, and not intact
        unread = os.fstat(self._file.fileno()).st_size - (self._buf_at + len(self._buf))
        if unread <= 0 or need - avail > unread:
            return False
        chunk = self._file.read(max(READ_CHUNK, need - avail))
        if not chunk:
            return False
        self._buf_at += self._pos
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _inspect(self) -> frames.Step:
        """frames.step at the current position, reading the file afresh."""
        assert self._file is not None
        at = self._buf_at + self._pos
        fd = self._file.fileno()
        if at >= os.fstat(fd).st_size and not self._sealed():
            return None
        return frames.step(_open_segment(self.directory, self._base, fd), at, self._next)

    def _sealed(self) -> bool:
        return any(b > self._base for b in list_segments(self.directory))

    def _skip_to(self, at: int) -> None:
        """Continue at byte `at` of the open segment."""
        assert self._file is not None
        rel = at - self._buf_at
        if 0 <= rel <= len(self._buf):
            self._pos = rel
            return
        self._file.seek(at)
        self._buf = b""
        self._pos = 0
        self._buf_at = at

    def _rewind(self) -> None:
        """Forget a partial frame so the next read sees it afresh from disk."""
        assert self._file is not None
        at = self._buf_at + self._pos
        self._file.seek(at)
        self._buf = b""
        self._pos = 0
        self._buf_at = at

    def remaining(self) -> int:
        """Records (intact or damaged) after the current position."""
        bases = list_segments(self.directory)
        if not bases:
            return 0
        if self._file is not None and self._base == bases[-1]:
            seg = _open_segment(self.directory, self._base, self._file.fileno())
            return frames.scan(seg, self._buf_at + self._pos, self._next).next_offset - self._next
        return max(0, end_offset(self.directory) - self._next)

    def _advance_segment(self) -> bool:
        """Move to the segment starting at the current offset, if the writer rolled to it
        (or reopen an empty one a writer replaced with a new-format file of the same name)."""
        path = self.directory / segment_name(self._next)
        if self._next == self._base:
            assert self._file is not None
            try:
                replaced = os.stat(path).st_ino != os.fstat(self._file.fileno()).st_ino
            except FileNotFoundError:
                replaced = False
            if not replaced:
                return False
        elif not path.exists():
            return False
        self._close()
        self._open(self._next)
        return True

    def _open(self, base: int) -> None:
        self._file = (self.directory / segment_name(base)).open("rb", buffering=0)
        self._fmt = frames.file_format(os.pread(self._file.fileno(), len(frames.FILE_MAGIC), 0))
        self._base = base
        self._buf = b""
        self._pos = 0
        self._buf_at = frames.data_start(self._fmt)
        self._file.seek(self._buf_at)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._buf = b""
        self._pos = 0
        self._buf_at = 0

    def close(self) -> None:
        self._close()


def end_offset(directory: Path) -> int:
    """The offset after the last record of the newest segment (the high watermark)."""
    bases = list_segments(directory)
    if not bases:
        return 0
    fd = os.open(directory / segment_name(bases[-1]), os.O_RDONLY)
    try:
        seg = Segment(fd, directory / segment_name(bases[-1]), bases[-1], None)
        offset, at = segment_index.start_for(seg, sys.maxsize)
        return frames.scan(seg, at, offset).next_offset
    finally:
        os.close(fd)


def first_offset(directory: Path) -> int:
    """The offset of the first record still on disk."""
    bases = list_segments(directory)
    return bases[0] if bases else 0


def delete_before(directory: Path, offset: int) -> int:
    """Delete segments whose every record is below `offset` (and their indexes); returns how
    many were deleted."""
    bases = list_segments(directory)
    deleted = 0
    for base, next_base in itertools.pairwise(bases):
        if next_base <= offset:
            (directory / segment_name(base)).unlink(missing_ok=True)
            segment_index.remove(directory / segment_name(base))
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
