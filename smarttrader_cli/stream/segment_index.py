"""A sparse offset index per segment: where a reader starts instead of the segment's first
record, so a seek or a high watermark reads a bounded number of bytes however full the
segment is.

`<base>.idx` sits next to `<base>.seg`: INDEX_MAGIC and the segment's base offset, then
one entry about every EVERY bytes of records,

    offset (8) | byte position of that record (8) | CRC32 of the previous 16 bytes (4)

and, once the writer has rolled past the segment, a last entry at its end (the offset
after its last record, its size) that says the index covers all of it.

The index is derived data, written without fsync: whatever it says is checked against
the segment before it is used (the record at the position must be intact and carry the
offset), so a missing, damaged, stale or lying index costs a scan, never a record
skipped or read twice. A reader rebuilds the index of a sealed segment that is missing,
damaged or incomplete; the newest segment's index belongs to its writer, which repairs it
when it reopens the segment (segments.py).
"""

from __future__ import annotations

import bisect
import logging
import os
import struct
import zlib
from pathlib import Path

from smarttrader_cli.stream import frames
from smarttrader_cli.stream.frames import Damage, Segment

log = logging.getLogger("st.stream.segments")

SUFFIX = ".idx"
INDEX_MAGIC = b"STIDX01\n"
HEADER = struct.Struct(">8sq")  # magic, base offset
ENTRY = struct.Struct(">qqI")  # offset, byte position, CRC32 of the two
POINT = struct.Struct(">qq")
EVERY = 256 << 10  # bytes of records between entries: what a seek reads at most, about
TRIES = 4  # entries checked, nearest first, before a seek starts from the segment's first record

Point = tuple[int, int]  # (offset, byte position)


def index_path(segment: Path) -> Path:
    """The index file of a segment file."""
    return segment.with_suffix(SUFFIX)


def remove(segment: Path) -> None:
    """Delete a segment's index (with the segment, or after it)."""
    index_path(segment).unlink(missing_ok=True)


def sweep(directory: Path, bases: list[int]) -> None:
    """Delete index files whose segment is gone (a crash between the two unlinks)."""
    keep = {f"{b:020d}{SUFFIX}" for b in bases}
    for entry in os.scandir(directory):
        if entry.name.endswith(SUFFIX) and entry.name not in keep:
            Path(entry.path).unlink(missing_ok=True)


def encode(points: list[Point]) -> bytes:
    """Index entries as stored."""
    out = []
    for offset, pos in points:
        packed = POINT.pack(offset, pos)
        out.append(packed + struct.pack(">I", zlib.crc32(packed)))
    return b"".join(out)


def load(path: Path, base: int, size: int) -> tuple[list[Point], bool]:
    """The entries of an index up to the first that is torn, fails its checksum, is out of
    order or points outside the segment's `size` bytes; and whether that was all of it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], False
    if len(data) < HEADER.size or HEADER.unpack_from(data) != (INDEX_MAGIC, base):
        return [], False
    body = memoryview(data)[HEADER.size :]
    whole = len(body) % ENTRY.size == 0
    points: list[Point] = []
    last_offset, last_pos = base - 1, frames.data_start(2) - 1
    for i in range(len(body) // ENTRY.size):
        at = i * ENTRY.size
        offset, pos, crc = ENTRY.unpack_from(body, at)
        if zlib.crc32(body[at : at + POINT.size]) != crc:
            return points, False
        if offset <= last_offset or pos <= last_pos or pos > size:
            return points, False
        points.append((offset, pos))
        last_offset, last_pos = offset, pos
    return points, whole


def write(path: Path, base: int, points: list[Point]) -> None:
    """Replace an index in one rename (readers see the old one or the new one)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(HEADER.pack(INDEX_MAGIC, base) + encode(points))
    os.replace(tmp, path)


def walk(seg: Segment, start: Point, end: int, points: list[Point]) -> Point:
    """Step through the records from `start` to byte `end`, adding an entry to `points`
    for the first intact record every EVERY bytes; returns where it stopped."""
    offset, pos = start
    last = points[-1][1] if points else frames.data_start(seg.fmt)
    while pos < end:
        got = frames.step(seg, pos, offset)
        if got is None:
            break
        if isinstance(got, Damage):
            offset += got.count
            if got.end == pos:
                break
            pos = got.end
            continue
        if pos - last >= EVERY:
            points.append((offset, pos))
            last = pos
        offset += 1
        pos = got[1]
    return offset, pos


def build(seg: Segment) -> list[Point]:
    """The entries of a segment, from its records (with its end if it is sealed)."""
    points: list[Point] = []
    end = walk(seg, (seg.base, frames.data_start(seg.fmt)), seg.size, points)
    if seg.sealed and end[1] == seg.size:
        points.append(end)
    return points


def start_for(seg: Segment, offset: int) -> Point:
    """(offset, byte) of an intact record of the segment at or before `offset` to read
    forward from: the nearest indexed one that checks out, or the segment's first record."""
    first = (seg.base, frames.data_start(seg.fmt))
    if seg.fmt != 2:
        return first  # older frames carry no offsets: nothing to check an entry against
    points, whole = load(index_path(seg.path), seg.base, seg.size)
    if not seg.sealed:  # the size now covers every record an entry just read points at
        seg.size = os.fstat(seg.fd).st_size
    if seg.sealed and not (whole and points and points[-1][1] == seg.size):
        points = _rebuild(seg, "missing, damaged or incomplete")
    nearest = _before(seg, points, offset)
    if not nearest:
        return first
    for tried, point in enumerate(nearest[:TRIES]):
        if frames.offset_at(seg, point[1]) == point[0]:
            if tried == 0:
                return point
            break
    else:
        point = first
    if seg.sealed:  # the writer repairs the newest segment's index when it reopens it
        point = (_before(seg, _rebuild(seg, "wrong"), offset) or [first])[0]
    log.warning(
        "index of %s: record %d is not at byte %d; reading from record %d",
        seg.path, nearest[0][0], nearest[0][1], point[0],
    )  # fmt: skip
    return point


def _before(seg: Segment, points: list[Point], offset: int) -> list[Point]:
    """The entries at or before `offset` that point at a record (not the end), nearest first."""
    i = bisect.bisect_right(points, (offset, seg.size))
    return [p for p in reversed(points[:i]) if p[1] < seg.size]


def _rebuild(seg: Segment, why: str) -> list[Point]:
    points = build(seg)
    try:
        write(index_path(seg.path), seg.base, points)
    except OSError as exc:  # a read-only log: the index is rebuilt in memory each time
        log.warning("index of %s %s, not rewritten: %s", seg.path, why, exc)
    else:
        log.info("index of %s %s: rebuilt (%d entries)", seg.path, why, len(points))
    return points


def repair(seg: Segment, end: Point) -> tuple[list[Point], bool]:
    """For a writer reopening the newest segment, whose records end at `end` (a torn tail
    already cut off): its index made to agree with it (every entry checked, the rest
    rebuilt from the records), and whether the file must be rewritten to say so."""
    loaded, whole = load(index_path(seg.path), seg.base, end[1])
    points: list[Point] = []
    for offset, pos in loaded:
        if offset >= end[0] or pos >= end[1] or frames.offset_at(seg, pos) != offset:
            break
        points.append((offset, pos))
    start = points[-1] if points else (seg.base, frames.data_start(seg.fmt))
    walk(seg, start, end[1], points)
    return points, points != loaded or not whole


class IndexWriter:
    """Appends the entries of the segment being written, after the records they point at
    (no fsync: a lost or torn tail of the index is found and repaired)."""

    def __init__(self, segment: Path, base: int, points: list[Point], rewrite: bool) -> None:
        self.path = index_path(segment)
        self.last = points[-1][1] if points else frames.data_start(2)  # the newest entry's byte
        self._fd = -1
        try:
            if rewrite:
                write(self.path, base, points)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            self._failed(exc)

    def add(self, points: list[Point]) -> None:
        """Append entries (the writer picks them, EVERY bytes after `last`)."""
        if not points:
            return
        self.last = points[-1][1]
        if self._fd < 0:
            return
        try:
            view = memoryview(encode(points))
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:  # the records are written: only the index falls behind
            self._failed(exc)

    def seal(self, end: Point) -> None:
        """The writer rolled past the segment: mark the index complete and close it."""
        self.add([end])
        self.close()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def _failed(self, exc: OSError) -> None:
        log.warning("index %s not written (it is rebuilt when needed): %s", self.path, exc)
        self.close()
