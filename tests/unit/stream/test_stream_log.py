"""The local log and the spool: framing, torn tails, damage, the older format, segment
rolls, offsets, the writer lock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from smarttrader_cli.config.schema import StreamConfig
from smarttrader_cli.errors import StError
from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.frames import Damage
from smarttrader_cli.stream.local_log import LocalConsumer, LocalProducer, partition_for
from smarttrader_cli.stream.segments import (
    SegmentReader,
    SegmentWriter,
    end_offset,
    list_segments,
)
from smarttrader_cli.stream.spool import Spool


def test_records_roll_over_segments_and_read_back_by_offset(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=4096)
    bodies = [f"record-{i}".encode() * 20 for i in range(300)]
    assert writer.append(bodies[:150]) == 0
    assert writer.append(bodies[150:]) == 150
    writer.close()
    assert len(list_segments(tmp_path)) > 5
    assert end_offset(tmp_path) == 300
    reader = SegmentReader(tmp_path)
    reader.seek(137)
    got = reader.read(1000, 1 << 30)
    assert [o for o, _ in got] == list(range(137, 300))
    assert [b for _, b in got] == bodies[137:]
    assert reader.remaining() == 0


def test_a_torn_tail_is_invisible_to_readers_and_truncated_by_the_next_writer(
    tmp_path: Path,
) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=1 << 20)
    writer.append([b"a" * 100, b"b" * 100])
    writer.close()
    segment = tmp_path / "00000000000000000000.seg"
    with segment.open("ab") as f:  # a writer killed halfway through a frame
        f.write(b"\x00\x00\x00\x64\x12\x34")
    reader = SegmentReader(tmp_path)
    reader.seek(0)
    assert len(reader.read(10, 1 << 20)) == 2
    assert reader.read(10, 1 << 20) == []
    writer = SegmentWriter(tmp_path, segment_bytes=1 << 20)
    assert writer.next_offset == 2
    writer.append([b"c" * 10])
    writer.close()
    assert reader.read(10, 1 << 20) == [(2, b"c" * 10)]


def test_a_bad_crc_in_the_tail_is_truncated(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=1 << 20)
    writer.append([b"good", b"torn"])
    writer.close()
    segment = tmp_path / "00000000000000000000.seg"
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert SegmentWriter(tmp_path, 1 << 20).next_offset == 1


def event(sig: str) -> OutboundEvent:
    return OutboundEvent(sig.encode(), b'{"signature":"%s"}' % sig.encode(), 1_700_000_000_000_000)


def test_local_backend_partitions_by_signature_and_keeps_offsets(tmp_path: Path) -> None:
    config = StreamConfig(local_dir=str(tmp_path), partitions=3)
    producer = LocalProducer(config)
    with pytest.raises(StError, match="another process is writing"):
        LocalProducer(config)
    sigs = [f"sig-{i}" for i in range(60)]
    assert producer.publish([event(s) for s in sigs], timeout=1) == [True] * 60
    producer.close()
    consumer = LocalConsumer(StreamConfig(local_dir=str(tmp_path), partitions=9))
    consumer.start(lambda parts: dict.fromkeys(parts, 0))
    assert consumer.assignment() == [0, 1, 2]  # the partition count is fixed at creation
    messages = consumer.poll(1000, 1 << 20, 0.1)
    assert sorted(m.key.decode() for m in messages if m.key) == sorted(sigs)
    for m in messages:
        assert m.partition == partition_for(m.key or b"", 3)
    per_partition: dict[int, list[int]] = {}
    for m in messages:
        per_partition.setdefault(m.partition, []).append(m.offset)
    assert all(offsets == list(range(len(offsets))) for offsets in per_partition.values())
    assert consumer.lag() == {0: 0, 1: 0, 2: 0}
    consumer.seek(1, 2)
    again = consumer.poll(1000, 1 << 20, 0.1)
    assert {m.partition for m in again} == {1} and again[0].offset == 2
    consumer.close()


def test_spool_is_read_in_order_and_acknowledged_durably(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", segment_bytes=4096)
    with pytest.raises(StError, match="another webhook server"):
        Spool(tmp_path / "spool")
    spool.append([event(f"s{i}") for i in range(100)])
    assert spool.depth == 100
    first = spool.pending(40)
    assert [m.key for m in first] == [f"s{i}".encode() for i in range(40)]
    assert [m.key for m in spool.pending(40)] == [m.key for m in first]  # not acked: same again
    spool.ack(first[-1].offset + 1)
    segments_before = len(list_segments(tmp_path / "spool"))
    spool.close()
    reopened = Spool(tmp_path / "spool", segment_bytes=4096)
    assert reopened.depth == 60
    assert reopened.pending(1)[0].key == b"s40"
    reopened.ack(100)
    assert reopened.depth == 0
    assert len(list_segments(tmp_path / "spool")) <= segments_before
    reopened.close()


def _events(prefix: str, n: int) -> list[OutboundEvent]:
    return [OutboundEvent(f"{prefix}-{i}".encode(), b'{"v": 1}', 1) for i in range(n)]


def test_concurrent_publishes_share_fsyncs_and_all_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    config = StreamConfig(local_dir=str(tmp_path), partitions=3, segment_bytes=4096)
    producer = LocalProducer(config)
    fsyncs = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        fsyncs.append(fd)
        threading.Event().wait(0.01)  # a slow disk: the other callers queue behind it
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    results: list[list[bool]] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(producer.publish(_events(f"t{i}", 5), 5))
        )
        for i in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    producer.close()
    assert len(results) == 16 and all(all(r) for r in results)
    assert len(fsyncs) < 16 * 3  # group commit: fewer fsync cycles than callers x partitions
    consumer = LocalConsumer(config)
    consumer.start(lambda parts: dict.fromkeys(parts, 0))
    keys = {m.key for m in consumer.poll(1000, 1 << 30, 0.1)}
    consumer.close()
    assert keys == {e.key for i in range(16) for e in _events(f"t{i}", 5)}


def test_after_a_failed_fsync_nothing_more_is_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    config = StreamConfig(local_dir=str(tmp_path), partitions=1)
    producer = LocalProducer(config)
    assert producer.publish(_events("a", 2), 5) == [True, True]

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert producer.publish(_events("b", 2), 5) == [False, False]
    monkeypatch.undo()
    # write-back errors are reported once: a later fsync could succeed without the data
    assert producer.publish(_events("c", 1), 5) == [False]
    producer.close()


def v1_segment(directory: Path, base: int, bodies: list[bytes]) -> Path:
    """A segment as an older `st` wrote it: `>II` (length, CRC32) frames, no file header."""
    import struct
    import zlib

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{base:020d}.seg"
    path.write_bytes(b"".join(struct.pack(">II", len(b), zlib.crc32(b)) + b for b in bodies))
    return path


def read_all(directory: Path, offset: int = 0) -> tuple[list[tuple[int, bytes]], list[Damage]]:
    reader = SegmentReader(directory)
    reader.seek(offset)
    records: list[tuple[int, bytes]] = []
    damage: list[Damage] = []
    while True:
        first, bodies, lost = reader.read_run(1000, 1 << 30)
        records += zip(range(first, first + len(bodies)), bodies, strict=True)
        if lost is None:
            break
        damage.append(lost)
    reader.close()
    return records, damage


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


BODIES = [b"\x00" * 10 + f"record-{i}".encode() * 5 for i in range(20)]


def test_a_damaged_header_is_stepped_over_to_the_next_intact_record(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=1 << 20)
    writer.append(BODIES)
    writer.close()
    segment = tmp_path / "00000000000000000000.seg"
    data = segment.read_bytes()
    fifth = data.index(BODIES[5]) - 24  # the record header (magic, CRC, offset, length, CRC)
    flip(segment, fifth + 14)  # the length field: the record's extent is unknown
    records, damage = read_all(tmp_path)
    assert [o for o, _ in records] == [o for o in range(20) if o != 5]
    assert [b for o, b in records] == [b for i, b in enumerate(BODIES) if i != 5]
    (lost,) = damage
    assert (lost.first, lost.count, lost.start) == (5, 1, fifth)
    assert "header damaged" in lost.describe() and str(segment) in lost.describe()
    assert end_offset(tmp_path) == 20
    size = segment.stat().st_size
    assert SegmentWriter(tmp_path, 1 << 20).next_offset == 20
    assert segment.stat().st_size == size  # nothing cut off


def test_a_damaged_last_record_of_a_sealed_segment_is_reported(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, segment_bytes=4096)
    bodies = [f"r{i}".encode() * 100 for i in range(40)]
    writer.append(bodies)
    writer.close()
    bases = list_segments(tmp_path)
    assert len(bases) > 2
    sealed = tmp_path / f"{bases[0]:020d}.seg"
    flip(sealed, sealed.stat().st_size - 3)  # inside the body of its last record
    records, damage = read_all(tmp_path)
    (lost,) = damage
    assert lost.count == 1 and lost.first == bases[1] - 1
    assert len(records) == 39 and records[-1] == (39, bodies[39])


def test_segments_of_the_older_format_are_read_and_continued(tmp_path: Path) -> None:
    v1_segment(tmp_path, 0, BODIES[:10])
    v1_segment(tmp_path, 10, BODIES[10:15])
    assert end_offset(tmp_path) == 15
    writer = SegmentWriter(tmp_path, 1 << 20)  # the newest older-format segment is left as is
    assert writer.next_offset == 15
    writer.append(BODIES[15:])
    writer.close()
    assert list_segments(tmp_path) == [0, 10, 15]
    records, damage = read_all(tmp_path)
    assert records == list(enumerate(BODIES)) and damage == []
    assert read_all(tmp_path, 12)[0] == list(enumerate(BODIES))[12:]
    reader = SegmentReader(tmp_path)
    reader.seek(3)
    assert reader.remaining() == 17


def test_a_damaged_body_in_an_older_format_segment_is_stepped_over(tmp_path: Path) -> None:
    path = v1_segment(tmp_path, 0, BODIES[:10])
    flip(path, path.read_bytes().index(BODIES[4]) + 12)
    records, damage = read_all(tmp_path)
    assert [o for o, _ in records] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [(d.first, d.count) for d in damage] == [(4, 1)] and "checksum" in damage[0].reason
    assert SegmentWriter(tmp_path, 1 << 20).next_offset == 10
    assert path.stat().st_size == sum(8 + len(b) for b in BODIES[:10])


def test_an_older_format_damaged_length_keeps_the_records_after_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged length hides where the next record starts, and older frames carry no
    offsets: the writer keeps everything and continues past every offset the damaged
    bytes could have held; the reader then knows the intact records' offsets."""
    path = v1_segment(tmp_path, 0, BODIES[:10])
    flip(path, path.read_bytes().index(BODIES[4]) - 6)  # a high byte of record 4's length
    assert read_all(tmp_path) == (list(enumerate(BODIES[:4])), [])  # may still be in flight
    size = path.stat().st_size
    with caplog.at_level(logging.WARNING):
        writer = SegmentWriter(tmp_path, 1 << 20)
    assert path.stat().st_size == size
    lost = writer.next_offset - 9  # records 5-9 follow the damaged run
    assert lost >= 1 and "kept" in caplog.text
    writer.append([b"\x00" * 10 + b"new"])
    writer.close()
    records, damage = read_all(tmp_path)
    (gap,) = damage
    assert (gap.first, gap.count) == (4, lost)
    assert [b for _, b in records] == [*BODIES[:4], *BODIES[5:10], b"\x00" * 10 + b"new"]
    assert [o for o, _ in records][4:] == list(range(4 + lost, 10 + lost))


def test_the_spool_skips_a_damaged_record_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append([event(f"s{i}") for i in range(5)])
    spool.close()
    (segment,) = (tmp_path / "spool").glob("*.seg")
    flip(segment, segment.read_bytes().index(b"s2", 40) + 1)
    reopened = Spool(tmp_path / "spool")
    with caplog.at_level(logging.ERROR):
        pending = reopened.pending(10)
    assert [m.key for m in pending] == [b"s0", b"s1", b"s3", b"s4"]
    assert "record 2 unreadable" in caplog.text
    reopened.close()


def test_a_reader_follows_an_empty_older_segment_replaced_by_the_writer(tmp_path: Path) -> None:
    v1_segment(tmp_path, 0, BODIES[:3])
    v1_segment(tmp_path, 3, [])  # an older writer had just rolled when it stopped
    reader = SegmentReader(tmp_path)
    reader.seek(0)
    assert [o for o, _ in reader.read(10, 1 << 20)] == [0, 1, 2]
    assert reader.read(10, 1 << 20) == []  # reading the empty segment at 3
    writer = SegmentWriter(tmp_path, 1 << 20)  # replaces it with a new-format file
    writer.append(BODIES[3:6])
    writer.close()
    assert list_segments(tmp_path) == [0, 3]
    assert reader.read(10, 1 << 20) == list(enumerate(BODIES))[3:6]
