"""The local log's sparse offset index: seeks and the high watermark read a bounded span,
and an index that is missing, damaged, stale or lying is rebuilt, never believed."""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.config import load_config
from smarttrader_cli.stream import frames, segment_index
from smarttrader_cli.stream.frames import Segment
from smarttrader_cli.stream.segment_index import index_path, load
from smarttrader_cli.stream.segments import (
    SegmentReader,
    SegmentWriter,
    delete_before,
    end_offset,
    list_segments,
    segment_name,
)
from tests.harness import write_config
from tests.unit.stream.test_stream_log import flip, read_all

EVERY = 1024  # index entries about every 1 KiB in these tests (256 KiB in use)
BODIES = [b"\x00" * 10 + f"record-{i}|".encode() * (3 + i % 7) for i in range(600)]


@pytest.fixture(autouse=True)
def small_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment_index, "EVERY", EVERY)


def written(directory: Path, bodies: list[bytes] = BODIES, segment_bytes: int = 16384) -> None:
    writer = SegmentWriter(directory, segment_bytes)
    for i in range(0, len(bodies), 37):  # appends of many records, as the producer makes
        writer.append(bodies[i : i + 37])
    writer.close()


def segment(directory: Path, base: int) -> Segment:
    """A segment opened the way readers open it (sealed if a later one exists)."""
    later = [b for b in list_segments(directory) if b > base]
    path = directory / segment_name(base)
    return Segment(os.open(path, os.O_RDONLY), path, base, later[0] if later else None)


def entries(directory: Path, base: int) -> list[tuple[int, int]]:
    path = directory / segment_name(base)
    points, whole = load(index_path(path), base, path.stat().st_size)
    assert whole
    return points


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Records a reader steps over: counted in frames.take (the fast path) and frames.step."""
    count = [0]
    take, step = frames.take, frames.step

    def counted_take(*args: object, **kwargs: object) -> tuple[int, int]:
        out = args[4]
        assert isinstance(out, list)
        before = len(out)
        result = take(*args, **kwargs)  # type: ignore[arg-type]
        count[0] += len(out) - before
        return result

    def counted_step(*args: object) -> frames.Step:
        count[0] += 1
        return step(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(frames, "take", counted_take)
    monkeypatch.setattr(frames, "step", counted_step)
    yield count


def assert_sound(directory: Path, base: int) -> None:
    """Every entry of the index points at the record it names; the last is near the end."""
    seg = segment(directory, base)
    points = entries(directory, base)
    for offset, pos in points:
        assert frames.offset_at(seg, pos) == offset
    assert seg.size - points[-1][1] < EVERY + 200
    os.close(seg.fd)


def assert_seeks_exact(directory: Path, offsets: list[int] | None = None) -> None:
    """A seek to each offset, then a read, gives exactly that record and the next ones."""
    for offset in offsets if offsets is not None else range(len(BODIES) + 1):
        reader = SegmentReader(directory)
        reader.seek(offset)
        assert reader.position == offset
        got = reader.read(3, 1 << 20)
        want = list(enumerate(BODIES))[offset : offset + 3]
        assert got == want, f"seek to {offset}"
        reader.close()


def test_the_writer_indexes_each_segment_as_it_appends_and_marks_the_sealed_ones_complete(
    tmp_path: Path,
) -> None:
    written(tmp_path)
    bases = list_segments(tmp_path)
    assert len(bases) >= 4
    for base, next_base in zip(bases, [*bases[1:], None], strict=True):
        points = entries(tmp_path, base)
        seg = segment(tmp_path, base)
        records = points[:-1] if next_base is not None else points
        assert len(records) >= seg.size // (EVERY + 200) >= 1
        for offset, pos in records:  # each points at the record it names
            assert frames.offset_at(seg, pos) == offset
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise([(0, 8), *records])]
        assert min(gaps) >= EVERY and max(gaps) < EVERY + 200
        if next_base is not None:
            assert points[-1] == (next_base, seg.size)  # the writer rolled past it
        os.close(seg.fd)


def test_a_seek_lands_on_every_offset_across_segments_reading_a_bounded_span(
    tmp_path: Path, steps: list[int]
) -> None:
    written(tmp_path, segment_bytes=32768)
    bases = list_segments(tmp_path)
    assert len(bases) >= 2
    edges = [o for b in bases for o in (b - 1, b, b + 1) if o >= 0]
    assert_seeks_exact(tmp_path, [*edges, 299, 599, 600])
    for offset in [bases[1] - 1, len(BODIES) - 1, len(BODIES)]:  # the far end of a segment
        steps[0] = 0
        reader = SegmentReader(tmp_path)
        reader.seek(offset)
        assert reader.position == offset
        assert steps[0] <= EVERY // 60  # the records between two entries (60+ bytes each)
        reader.close()


def test_the_high_watermark_reads_from_the_last_indexed_record(
    tmp_path: Path, steps: list[int]
) -> None:
    written(tmp_path, segment_bytes=1 << 20)
    assert list_segments(tmp_path) == [0]
    steps[0] = 0
    assert end_offset(tmp_path) == len(BODIES)
    assert steps[0] <= EVERY // 60 + 1


def test_a_missing_index_is_rebuilt_for_a_sealed_segment_and_by_the_next_writer(
    tmp_path: Path,
) -> None:
    written(tmp_path)
    bases = list_segments(tmp_path)
    wanted = {b: entries(tmp_path, b) for b in bases}
    for base in bases:
        index_path(tmp_path / segment_name(base)).unlink()
    assert_seeks_exact(tmp_path, [bases[1] + 5, bases[-1] + 5])
    assert entries(tmp_path, bases[1]) == wanted[bases[1]]  # a reader rebuilt it
    assert not index_path(tmp_path / segment_name(bases[-1])).exists()  # its writer's job
    assert end_offset(tmp_path) == len(BODIES)
    SegmentWriter(tmp_path, 16384).close()
    assert entries(tmp_path, bases[-1]) == wanted[bases[-1]]
    assert_seeks_exact(tmp_path)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(100))


def _torn(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def _bad_checksum(path: Path) -> None:
    flip(path, segment_index.HEADER.size + 3 * segment_index.ENTRY.size + 5)


def _out_of_order(path: Path) -> None:
    data = path.read_bytes()
    head, size = segment_index.HEADER.size, segment_index.ENTRY.size
    first, second = data[head : head + size], data[head + size : head + 2 * size]
    path.write_bytes(data[:head] + second + first + data[head + 2 * size :])


def _other_base(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(segment_index.HEADER.pack(segment_index.INDEX_MAGIC, 7) + data[16:])


def _lying(path: Path) -> None:
    """Valid checksums and order, but each entry names the record after the one it points at."""
    data = path.read_bytes()
    base = struct.unpack_from(">q", data, 8)[0]
    points, _ = load(path, base, 1 << 30)
    lies = [(offset + 1, pos) for offset, pos in points]
    path.write_bytes(data[: segment_index.HEADER.size] + segment_index.encode(lies))


def _behind(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: segment_index.HEADER.size + 2 * segment_index.ENTRY.size])


@pytest.mark.parametrize(
    "damage", [_garbage, _torn, _bad_checksum, _out_of_order, _other_base, _lying, _behind]
)
def test_a_damaged_stale_or_lying_index_is_never_believed_and_is_rebuilt(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    written(tmp_path)
    bases = list_segments(tmp_path)
    wanted = {b: entries(tmp_path, b) for b in bases}
    for base in bases:
        damage(index_path(tmp_path / segment_name(base)))
    assert_seeks_exact(tmp_path)
    assert end_offset(tmp_path) == len(BODIES)
    for base in bases[:-1]:
        assert entries(tmp_path, base) == wanted[base]  # sealed: rebuilt by a reader
    SegmentWriter(tmp_path, 16384).close()  # the newest: repaired by its writer
    assert_sound(tmp_path, bases[-1])
    assert len(entries(tmp_path, bases[-1])) >= len(wanted[bases[-1]]) - 1


def test_after_a_crash_the_index_never_points_past_the_cut_tail(tmp_path: Path) -> None:
    """A power loss can keep index entries the segment lost: the next writer cuts the torn
    tail, drops those entries, and writes new records where the lost ones were."""
    written(tmp_path, BODIES[:300], segment_bytes=1 << 20)
    path = tmp_path / segment_name(0)
    old_index = index_path(path).read_bytes()
    seg = segment(tmp_path, 0)
    kept = [p for p in entries(tmp_path, 0) if p[0] < 200]
    cut = kept[-1][1] + 30  # inside a record, well before the last entries
    os.close(seg.fd)
    os.truncate(path, cut)
    writer = SegmentWriter(tmp_path, 1 << 20)
    resumed = writer.next_offset
    assert resumed < 200 and path.stat().st_size < cut
    assert entries(tmp_path, 0) == [p for p in kept if p[0] < resumed]
    others = [b"\x00" * 10 + f"again-{i}".encode() * 4 for i in range(300 - resumed)]
    writer.append(others)
    writer.close()
    expected = [*BODIES[:resumed], *others]
    records, damage = read_all(tmp_path)
    assert records == list(enumerate(expected)) and damage == []
    seg = segment(tmp_path, 0)
    for offset, pos in entries(tmp_path, 0):
        assert frames.offset_at(seg, pos) == offset
    os.close(seg.fd)
    # The index as it was before the crash, put back: its entries past the cut are wrong now.
    index_path(path).write_bytes(old_index)
    for offset in [resumed - 1, resumed, 250, 299, 300]:
        got = read_all(tmp_path, offset)[0]
        assert got == list(enumerate(expected))[offset:], f"seek to {offset}"


def test_a_torn_index_entry_from_a_killed_writer_is_dropped_and_rewritten(
    tmp_path: Path,
) -> None:
    written(tmp_path, BODIES[:300], segment_bytes=1 << 20)
    wanted = entries(tmp_path, 0)
    with index_path(tmp_path / segment_name(0)).open("ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x01")  # killed halfway through an entry
    SegmentWriter(tmp_path, 1 << 20).close()
    assert entries(tmp_path, 0) == wanted


def test_a_failed_index_write_leaves_appends_working(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, 1 << 20)
    writer.append(BODIES[:100])
    index = writer._index
    os.close(index._fd)
    index._fd = os.open(index.path, os.O_RDONLY)  # writes to it fail (EBADF), as on a bad disk
    writer.append(BODIES[100:])
    writer.close()
    assert_seeks_exact(tmp_path, [0, 150, 450, 600])
    SegmentWriter(tmp_path, 1 << 20).close()
    assert entries(tmp_path, 0)[-1][0] > 500  # the next writer caught the index up


def test_a_damaged_record_at_an_indexed_position_is_still_reported(tmp_path: Path) -> None:
    written(tmp_path, segment_bytes=1 << 20)
    offset, pos = entries(tmp_path, 0)[5]
    flip(tmp_path / segment_name(0), pos + frames.V2.size + 3)  # inside its body
    records, damage = read_all(tmp_path, offset - 2)
    assert [(d.first, d.count) for d in damage] == [(offset, 1)]
    assert [o for o, _ in records] == [o for o in range(offset - 2, 600) if o != offset]
    assert read_all(tmp_path, offset + 1)[0] == list(enumerate(BODIES))[offset + 1 :]
    reader = SegmentReader(tmp_path)
    reader.seek(offset)  # the damaged record itself: reported when read, not skipped over
    first, bodies, lost = reader.read_run(10, 1 << 20)
    assert (first, bodies, lost is not None and lost.first) == (offset, [], offset)
    reader.close()


def test_deleting_a_segment_deletes_its_index_and_a_writer_sweeps_orphans(
    tmp_path: Path,
) -> None:
    written(tmp_path)
    bases = list_segments(tmp_path)
    assert delete_before(tmp_path, bases[2]) == 2
    assert sorted(tmp_path.glob("*.idx")) == [
        index_path(tmp_path / segment_name(b)) for b in bases[2:]
    ]
    (tmp_path / segment_name(bases[2])).unlink()  # a crash between the two unlinks
    SegmentWriter(tmp_path, 16384).close()
    assert not index_path(tmp_path / segment_name(bases[2])).exists()


def test_ops_cleanup_removes_the_index_with_its_segment(tmp_path: Path) -> None:
    from tests.stream_support import helius_events, outbound, produce

    config = write_config(
        tmp_path, {"stream.segment_bytes": 20_000, "stream.partitions": 1, "stream.batch_size": 100}
    )
    produce(config, outbound(helius_events(400)))
    stream = load_config(config).config.stream
    partition = Path(stream.local_dir) / stream.topic / "p0"
    for path in partition.glob("*.seg"):
        os.utime(path, (time.time() - 30 * 86400,) * 2)
    runner = CliRunner()
    for args in (["stream", "drain", "--max-messages", "200"], ["ops", "cleanup"]):
        result = runner.invoke(app, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    kept = list_segments(partition)
    assert kept and kept[0] > 0
    assert sorted(partition.glob("*.idx")) == [
        index_path(partition / segment_name(b)) for b in kept
    ]
    shutil.rmtree(partition.parent)
