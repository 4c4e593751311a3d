"""A damaged record in the local log: dead-lettered, the rest drained, nothing truncated
(defect: the drain stalled on it and a restarted writer cut off every record after it)."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app as st_app
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.tables import WEBHOOK_DEAD_LETTERS
from smarttrader_cli.stream import segment_index
from smarttrader_cli.stream.local_log import LocalProducer
from tests.harness import write_config
from tests.stream_support import event_signatures, helius_events, lake_for, outbound, produce


def drain(config: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        st_app,
        ["--config", str(config), "stream", "drain", "--max-seconds", "10", "-f", "json"],
    )
    assert result.exit_code == 0, result.output
    return dict(orjson.loads(result.stdout)[0])


def only_segment(config: Path) -> Path:
    stream = load_config(config).config.stream
    (segment,) = (Path(stream.local_dir) / stream.topic / "p0").glob("*.seg")
    return segment


def damage_event(segment: Path, signature: str) -> None:
    """Flip one byte inside the stored JSON of the event with `signature`."""
    data = bytearray(segment.read_bytes())
    at = data.index(b'"signature":"' + signature.encode()) + 20
    data[at] ^= 0x55
    segment.write_bytes(bytes(data))


def test_a_corrupt_record_is_dead_lettered_and_the_records_after_it_are_drained(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"stream.partitions": 1})
    events = helius_events(30)
    produce(config, outbound(events))
    segment = only_segment(config)
    damage_event(segment, events[8]["signature"])
    summary = drain(config)
    assert summary["events_written"] == 29 and summary["dead_letters"] == 1
    assert summary["caught_up"] is True and summary["lag"] == 0
    (dead,) = lake_for(config).read(WEBHOOK_DEAD_LETTERS).to_pylist()
    assert (dead["stream_partition"], dead["stream_offset"]) == (0, 8)
    assert "checksum" in dead["error"]
    assert set(event_signatures(config)) == {e["signature"] for i, e in enumerate(events) if i != 8}

    # `st webhook serve` restarts: its writer must not cut off the records after it.
    size = segment.stat().st_size
    LocalProducer(load_config(config).config.stream).close()
    assert segment.stat().st_size == size
    more = helius_events(5, seed=3, start_time=1_780_000_000)
    produce(config, outbound(more))  # appended after the damaged record, at offsets 30-34
    assert drain(config)["events_written"] == 5


def test_a_torn_tail_is_cut_off_with_a_warning_naming_the_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, {"stream.partitions": 1})
    produce(config, outbound(helius_events(3)))
    segment = only_segment(config)
    intact = segment.stat().st_size
    with segment.open("ab") as f:  # the writer died halfway through a frame
        f.write(b"\x00\x00\x01\x00torn")
    with caplog.at_level(logging.WARNING):
        LocalProducer(load_config(config).config.stream).close()
    assert segment.stat().st_size == intact
    assert f"{intact}-{intact + 8}" in caplog.text
    assert drain(config)["events_written"] == 3


def test_a_corrupt_record_at_an_indexed_position_is_dead_lettered_and_seeks_go_past_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segment_index, "EVERY", 4096)  # index entries every few events
    config = write_config(tmp_path, {"stream.partitions": 1})
    events = helius_events(260)
    produce(config, outbound(events[:100]))
    assert drain(config)["events_written"] == 100
    produce(config, outbound(events[100:200]))
    segment = only_segment(config)
    size = segment.stat().st_size
    points, _ = segment_index.load(segment_index.index_path(segment), 0, size)
    hit = next(offset for offset, _pos in points if offset > 120)
    damage_event(segment, events[hit]["signature"])
    summary = drain(config)  # resumes at 100 from an indexed record before it
    assert summary["events_written"] == 99 and summary["dead_letters"] == 1
    (dead,) = lake_for(config).read(WEBHOOK_DEAD_LETTERS).to_pylist()
    assert dead["stream_offset"] == hit and "checksum" in dead["error"]
    produce(config, outbound(events[200:]))
    assert drain(config)["events_written"] == 60  # resumes at 200, past the damaged entry
    want = {e["signature"] for i, e in enumerate(events) if i != hit}
    assert sorted(event_signatures(config)) == sorted(want)
