"""How records are framed in a segment file (two formats) and how damage in one is told
apart from a torn tail.

Format 2, written by this version: the file starts with FILE_MAGIC, and each record is

    MAGIC (4) | CRC32 of the next 16 bytes (4) | offset (8) | body length (4) | CRC32 of the body (4) | body

A record carries its own offset and a checksummed header, so a reader can step over a
damaged record (or a damaged header, by looking for the next MAGIC that starts an intact
record) and knows exactly which offsets it lost. Format 1, segments written before: no
file header, each record `body length (4) | CRC32 of the body (4) | body`; a damaged body
is stepped over by its length when an intact record follows it, and a damaged length only
in a sealed segment (one the writer has rolled past), whose record count its successor's
base offset gives.

Damage is only ever reported where something intact follows it (or the segment is
sealed): bytes after the last intact record of the newest segment may be a record still
being written, or a torn tail that the next writer cuts off.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FILE_MAGIC = b"STSEG02\n"  # a format-1 file starts with a body length: never these bytes
MAGIC = b"\xd7\x1e\x5e\x90"
V2 = struct.Struct(">4sIqII")  # magic, header CRC, offset, body length, body CRC
V2_CHECKED = struct.Struct(">qII")  # the part of the header its CRC covers
V1 = struct.Struct(">II")  # body length, body CRC
# Every body starts with the 10-byte record header of local_log.py (received time, key
# length): the most format-1 records a damaged run of bytes can have held.
V1_MIN_FRAME = V1.size + 10
MAX_RAW = 64 << 10  # bytes of a damaged run kept for its dead letter
WINDOW = 4 << 20


def encode(offset: int, body: bytes) -> bytes:
    """One format-2 record as stored."""
    checked = V2_CHECKED.pack(offset, len(body), zlib.crc32(body))
    return MAGIC + struct.pack(">I", zlib.crc32(checked)) + checked + body


def take(
    fmt: int,
    buf: bytes,
    pos: int,
    expect: int,
    out: list[bytes],
    max_records: int,
    max_bytes: int,
) -> tuple[int, int]:
    """Append the complete, intact records in `buf` from `pos` (the first numbered
    `expect`) to `out`, within the limits; (the position after them, their body bytes).

    The hot loop of a drain: anything else (a partial, damaged or misnumbered record)
    stops it, for `step` to look at.
    """
    end = len(buf)
    taken = len(out)
    size = 0
    crc32 = zlib.crc32
    if fmt == 2:
        unpack, header = V2.unpack_from, V2.size
        while taken < max_records and size < max_bytes and end - pos >= header:
            magic, header_crc, offset, length, body_crc = unpack(buf, pos)
            start = pos + header
            stop = start + length
            if magic != MAGIC or offset != expect or stop > end:
                break
            body = buf[start:stop]
            if crc32(body) != body_crc or crc32(buf[pos + 8 : start]) != header_crc:
                break
            out.append(body)
            taken += 1
            expect += 1
            size += length
            pos = stop
        return pos, size
    unpack1, header = V1.unpack_from, V1.size
    while taken < max_records and size < max_bytes and end - pos >= header:
        length, crc = unpack1(buf, pos)
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
    return pos, size


def frame_size(fmt: int, buf: bytes, pos: int) -> int:
    """Bytes the record at `pos` takes as its header says (the header's size if `buf`
    does not hold all of it yet)."""
    header = V2.size if fmt == 2 else V1.size
    if len(buf) - pos < header:
        return header
    if fmt == 2:
        return header + V2.unpack_from(buf, pos)[3]
    return header + V1.unpack_from(buf, pos)[0]


def file_format(head: bytes) -> int:
    """The format of a segment from its first bytes (a file shorter than the magic is format
    1: format-2 files are created with their header in place)."""
    return 2 if head.startswith(FILE_MAGIC) else 1


def data_start(fmt: int) -> int:
    """Byte offset of the first record."""
    return len(FILE_MAGIC) if fmt == 2 else 0


@dataclass(frozen=True)
class Damage:
    """Records lost to damage: offsets `first` .. `first + count - 1`, bytes `start` .. `end`."""

    first: int
    count: int  # 0: bytes between two records that held none
    start: int
    end: int
    reason: str
    raw: bytes  # the damaged record's body, or the damaged bytes (at most MAX_RAW)
    path: str

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def describe(self) -> str:
        what = f"record {self.first}" if self.count == 1 else f"records {self.first}-{self.last}"
        return f"{what} unreadable: {self.reason} (bytes {self.start}-{self.end} of {self.path})"


class Segment:
    """One segment file, read with positioned reads through a read-ahead window."""

    def __init__(self, fd: int, path: Path, base: int, next_base: int | None) -> None:
        self.fd = fd
        self.path = path
        self.base = base
        self.next_base = next_base  # set when sealed: the writer rolled to that segment
        self.size = os.fstat(fd).st_size
        self._window = b""
        self._window_at = 0
        self.fmt = file_format(os.pread(fd, len(FILE_MAGIC), 0))  # not a whole window

    @property
    def sealed(self) -> bool:
        return self.next_base is not None

    def read(self, n: int, at: int) -> bytes:
        rel = at - self._window_at
        if rel >= 0 and rel + n <= len(self._window):
            return self._window[rel : rel + n]
        if n > WINDOW:
            return os.pread(self.fd, n, at)
        self._window = os.pread(self.fd, WINDOW, at)
        self._window_at = at
        return self._window[:n]


Step = tuple[bytes, int] | Damage | None


def step(seg: Segment, pos: int, expect: int) -> Step:
    """What lies at byte `pos`, where record `expect` should start: its body and the byte
    after it, a damaged run (ending where the next intact record starts), or None: nothing
    more (yet)."""
    if pos >= seg.size:
        if seg.sealed and seg.next_base is not None and expect < seg.next_base:
            return _damage(seg, pos, pos, expect, seg.next_base - expect, "records missing")
        return None
    return _step_v2(seg, pos, expect) if seg.fmt == 2 else _step_v1(seg, pos, expect)


def _step_v2(seg: Segment, pos: int, expect: int) -> Step:
    head = seg.read(V2.size, pos)
    if len(head) == V2.size:
        magic, header_crc, offset, length, body_crc = V2.unpack(head)
        if magic == MAGIC and zlib.crc32(head[8:]) == header_crc and offset >= expect:
            stop = pos + V2.size + length
            if stop > seg.size:  # still being written, torn, or cut short in a sealed file
                return _to_end(seg, pos, expect, "incomplete record") if seg.sealed else None
            body = seg.read(length, pos + V2.size)
            if zlib.crc32(body) == body_crc:
                if offset == expect:
                    return body, stop
                return _damage(seg, pos, pos, expect, offset - expect, "records missing")
            if seg.sealed or _next_intact_v2(seg, stop, offset + 1) is not None:
                reason = "its body failed its checksum (CRC32)"
                return _damage(seg, pos, stop, expect, offset + 1 - expect, reason, body)
            return None
    found = _next_intact_v2(seg, pos + 1, expect)
    if found is not None:
        at, offset = found
        return _damage(seg, pos, at, expect, offset - expect, "record header damaged")
    return _to_end(seg, pos, expect, "record header damaged") if seg.sealed else None


def _intact_v2(
    seg: Segment, at: int, expect: int, read: Callable[[int, int], bytes] | None = None
) -> int | None:
    """The offset of an intact format-2 record at byte `at` (numbered `expect` or later),
    read through the segment's window unless `read` is given."""
    read = read or seg.read
    head = read(V2.size, at)
    if len(head) < V2.size:
        return None
    magic, header_crc, offset, length, body_crc = V2.unpack(head)
    if magic != MAGIC or zlib.crc32(head[8:]) != header_crc or offset < expect:
        return None
    if at + V2.size + length > seg.size:
        return None
    return offset if zlib.crc32(read(length, at + V2.size)) == body_crc else None


def offset_at(seg: Segment, at: int) -> int | None:
    """The offset carried by the intact format-2 record that starts at byte `at`, if one does
    (read on its own: checking an index entry reads one record, not a window)."""
    if seg.fmt != 2:
        return None
    return _intact_v2(seg, at, seg.base, lambda n, where: os.pread(seg.fd, n, where))


def _next_intact_v2(seg: Segment, start: int, expect: int) -> tuple[int, int] | None:
    """(byte, offset) of the first intact record at or after byte `start`."""
    at = start
    while at < seg.size:
        chunk = os.pread(seg.fd, WINDOW + len(MAGIC) - 1, at)
        i = chunk.find(MAGIC)
        while i >= 0:
            offset = _intact_v2(seg, at + i, expect)
            if offset is not None:
                return at + i, offset
            i = chunk.find(MAGIC, i + 1)
        at += WINDOW
    return None


def _step_v1(seg: Segment, pos: int, expect: int) -> Step:
    if seg.size - pos >= V1.size:
        length, crc = V1.unpack(seg.read(V1.size, pos))
        stop = pos + V1.size + length
        if stop <= seg.size:
            body = seg.read(length, pos + V1.size)
            if zlib.crc32(body) == crc:
                return body, stop
            last_of_sealed = stop == seg.size and seg.next_base == expect + 1
            if last_of_sealed or _intact_v1(seg, stop):
                reason = "its body failed its checksum (CRC32)"
                return _damage(seg, pos, stop, expect, 1, reason, body)
    if not seg.sealed:
        return None  # a damaged length: resolved once the writer has rolled past it
    assert seg.next_base is not None
    chain = v1_chain(seg, pos + 1)
    if chain is not None:
        at, records = chain
        count = seg.next_base - records - expect
        if count >= 1:
            return _damage(seg, pos, at, expect, count, "record length damaged")
    return _to_end(seg, pos, expect, "record length damaged")


def _intact_v1(seg: Segment, at: int) -> bool:
    head = seg.read(V1.size, at)
    if len(head) < V1.size:
        return False
    length, crc = V1.unpack(head)
    end = at + V1.size + length
    return end <= seg.size and zlib.crc32(seg.read(length, at + V1.size)) == crc


def v1_chain(seg: Segment, start: int) -> tuple[int, int] | None:
    """(byte, records) of the first point at or after `start` from which intact format-1
    records run exactly to the end of the file.

    Candidates start with a zero byte (no record is 16 MiB long), which JSON text never
    holds, so only the binary record headers are tried.
    """
    data = os.pread(seg.fd, seg.size - start, start)
    i = data.find(b"\x00")
    while i >= 0:
        records = _chain_length(data, i)
        if records:
            return start + i, records
        i = data.find(b"\x00", i + 1)
    return None


def _chain_length(data: bytes, at: int) -> int:
    records = 0
    while at < len(data):
        if len(data) - at < V1.size:
            return 0
        length, crc = V1.unpack_from(data, at)
        end = at + V1.size + length
        if end > len(data) or zlib.crc32(data[at + V1.size : end]) != crc:
            return 0
        records += 1
        at = end
    return records


def _to_end(seg: Segment, pos: int, expect: int, reason: str) -> Damage:
    """Everything from `pos` to the end of a sealed segment."""
    assert seg.next_base is not None
    return _damage(seg, pos, seg.size, expect, max(0, seg.next_base - expect), reason)


def _damage(
    seg: Segment, start: int, end: int, first: int, count: int, reason: str, body: bytes = b""
) -> Damage:
    raw = body[:MAX_RAW] if body else seg.read(min(end - start, MAX_RAW), start)
    return Damage(first, count, start, end, reason, raw, str(seg.path))


@dataclass
class Scan:
    """A walk over a segment: where its records end and what was damaged on the way."""

    next_offset: int  # the offset after the last record found (intact or lost)
    end: int  # the byte after it: anything beyond is a torn tail (or a record in flight)
    damage: list[Damage]


def scan(seg: Segment, pos: int, expect: int) -> Scan:
    """Walk the segment from byte `pos` (record `expect`) as far as records go."""
    damage: list[Damage] = []
    while True:
        got = step(seg, pos, expect)
        if got is None:
            return Scan(expect, pos, damage)
        if isinstance(got, Damage):
            damage.append(got)
            expect += got.count
            pos = got.end
            if not got.count and got.end == got.start:
                return Scan(expect, pos, damage)
        else:
            expect += 1
            pos = got[1]


def recover(seg: Segment) -> Scan:
    """For a writer reopening the newest segment: the offset it continues at, and the bytes
    to keep (what lies beyond `end` holds no intact record: a torn tail to cut off).

    A damaged length in a format-1 segment with intact records after it keeps everything;
    the writer then rolls, and the next offset is one no record of the damaged run could
    have had (a gap in the offsets, never an offset used twice).
    """
    result = scan(seg, data_start(seg.fmt), seg.base)
    if result.end < seg.size and seg.fmt == 1:
        chain = v1_chain(seg, result.end + 1)
        if chain is not None:
            at, records = chain
            lost = max(1, (at - result.end) // V1_MIN_FRAME)
            damage = _damage(seg, result.end, at, result.next_offset, lost, "record length damaged")
            result.damage.append(damage)
            return Scan(result.next_offset + lost + records, seg.size, result.damage)
    return result
