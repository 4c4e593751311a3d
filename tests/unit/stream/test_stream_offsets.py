"""Stored offsets belong to one stream: its topic and its identity (defect: a recreated local
log or a changed `stream.topic` was drained from the old offsets, skipping every event)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app as st_app
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from tests.harness import write_config
from tests.stream_support import event_signatures, helius_events, lake_for, outbound, produce

DAY = 86400


def drain(config: Path, *args: str) -> tuple[int, dict[str, Any] | str]:
    """`st stream drain` in-process: (exit code, the summary row or the output on failure)."""
    result = CliRunner().invoke(
        st_app,
        ["--config", str(config), "stream", "drain", "--max-seconds", "60", *args, "-f", "json"],
    )
    if result.exit_code:
        return result.exit_code, result.output
    return 0, orjson.loads(result.stdout)[0]


def log_root(config: Path) -> Path:
    stream = load_config(config).config.stream
    return Path(stream.local_dir) / stream.topic


def write_legacy_offsets(config: Path, version: int) -> None:
    """Offsets as an older `st` stored them: app id `<group>-<partition>`, no topic."""
    loaded = load_config(config).config
    lake = lake_for(config)
    lake.ensure_table(WEBHOOK_EVENTS)
    txns = [(f"{loaded.stream.group_id}-{p}", version) for p in range(loaded.stream.partitions)]
    lake.append(
        WEBHOOK_EVENTS,
        WEBHOOK_EVENTS.schema.empty_table(),
        CommitMeta("old-st", "stream.drain", "h"),
        txns,
    )


def test_a_recreated_local_log_is_drained_from_its_start(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    produce(config, outbound(helius_events(100)))
    code, first = drain(config)
    assert code == 0 and isinstance(first, dict) and first["events_written"] == 100
    shutil.rmtree(log_root(config))  # the stream folder is recreated
    fresh = helius_events(60, seed=99, start_time=1_780_000_000)
    produce(config, outbound(fresh))
    code, second = drain(config)
    assert code == 0, second
    assert isinstance(second, dict)
    assert second["events_written"] == 60 and second["caught_up"] and second["lag"] == 0
    assert len(set(event_signatures(config))) == 160


def test_a_new_topic_has_its_own_offsets(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    produce(config, outbound(helius_events(100)))
    assert drain(config)[0] == 0
    config = write_config(tmp_path, {"stream.topic": "helius-webhooks-v2"})
    produce(config, outbound(helius_events(60, seed=99, start_time=1_780_000_000)))
    code, second = drain(config)
    assert code == 0 and isinstance(second, dict), second
    assert second["events_written"] == 60 and second["lag"] == 0


def test_offsets_past_the_end_of_the_stream_fail_loudly_until_reset(tmp_path: Path) -> None:
    """An existing lake whose (old-style) offsets are ahead of the log: exit 1, the remedy
    named; `--reset-offsets` records new offsets at the stream's start and drains it."""
    config = write_config(tmp_path)
    write_legacy_offsets(config, 499)
    produce(config, outbound(helius_events(60)))
    code, output = drain(config)
    assert code == 1, output
    assert "--reset-offsets" in str(output) and "recreated" in str(output)
    assert event_signatures(config) == []
    code, summary = drain(config, "--reset-offsets")
    assert code == 0 and isinstance(summary, dict), summary
    assert summary["events_written"] == 60 and summary["caught_up"]
    code, again = drain(config)  # the reset is recorded: nothing left, no error
    assert code == 0 and isinstance(again, dict) and again["messages"] == 0


def test_old_offsets_are_migrated_on_the_first_drain(tmp_path: Path) -> None:
    """Offsets written by an older `st` (`<group>-<partition>`, a log without a stream id)
    are this topic's offsets until the first drain stores its own; not after."""
    config = write_config(tmp_path, {"stream.partitions": 1})
    produce(config, outbound(helius_events(100)))
    meta = log_root(config) / "meta.json"
    meta.write_text(json.dumps({"partitions": 1}))  # as an older `st` created it
    write_legacy_offsets(config, 79)  # the first 80 were drained by the older `st`
    code, summary = drain(config)
    assert code == 0 and isinstance(summary, dict), summary
    assert summary["messages"] == 20  # from offset 80 on, not 0
    assert "stream_id" in json.loads(meta.read_text())
    # Later, the folder is recreated: the old-style offsets do not apply to it.
    shutil.rmtree(log_root(config))
    produce(config, outbound(helius_events(50, seed=99, start_time=1_780_000_000)))
    code, later = drain(config)
    assert code == 0 and isinstance(later, dict), later
    assert later["events_written"] == 50


def test_cleanup_keeps_segments_of_a_recreated_log_until_drained(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {"stream.segment_bytes": 20_000, "stream.partitions": 1, "stream.batch_size": 100},
    )
    produce(config, outbound(helius_events(300)))
    assert drain(config)[0] == 0
    shutil.rmtree(log_root(config))
    produce(config, outbound(helius_events(300, seed=99, start_time=1_780_000_000)))
    segments = sorted((log_root(config) / "p0").glob("*.seg"))
    assert len(segments) >= 6
    for path in segments:
        os.utime(path, (time.time() - 30 * DAY,) * 2)
    result = CliRunner().invoke(
        st_app, ["--config", str(config), "ops", "cleanup", "-f", "json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert not [r for r in json.loads(result.stdout) if r["kind"] == "stream"]
    assert all(p.exists() for p in segments)
    code, summary = drain(config)
    assert code == 0 and isinstance(summary, dict) and summary["events_written"] == 300


def test_stream_status_reads_this_streams_offsets(tmp_path: Path) -> None:
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.stream.status import stream_status

    config = write_config(tmp_path)
    produce(config, outbound(helius_events(90)))
    assert drain(config)[0] == 0
    app = AppContext(config_path=config)
    rows = stream_status(app.config, app.lake)
    assert sum(r["end_offset"] for r in rows) == 90
    assert [r["lag"] for r in rows] == [0] * len(rows)
    assert sum(r["committed_offset"] for r in rows) == 90
