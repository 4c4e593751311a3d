"""The drain on the local backend: offsets in the Delta log, dedupe, dead letters, conflicts."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app as st_app
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WEBHOOK_DEAD_LETTERS, WEBHOOK_EVENTS
from smarttrader_cli.ops.locks import stage_lock
from smarttrader_cli.stream.backend import StreamMessage
from smarttrader_cli.stream.drain import Drainer, DrainLimits
from smarttrader_cli.stream.local_log import LocalConsumer
from tests.harness import write_config
from tests.stream_support import (
    committed_offsets,
    event_signatures,
    helius_events,
    lake_for,
    outbound,
    produce,
    with_faults,
)

ST = Path(sys.executable).parent / "st"


def drainer(config: Path, run_id: str) -> Drainer:
    loaded = load_config(config)
    stream = loaded.config.stream
    return Drainer(
        lake_for(config), LocalConsumer(stream), stream, CommitMeta(run_id, "stream.drain", "h")
    )


def test_drain_writes_each_signature_once_with_offsets_and_dead_letters(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 100})
    events = helius_events(500)
    values, _bad = with_faults(events, duplicates=40, bad=7)
    produce(config, values)
    result = CliRunner().invoke(
        st_app, ["--config", str(config), "stream", "drain", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)[0]
    assert summary["messages"] == len(values)
    assert summary["events_written"] == 500
    assert summary["dead_letters"] == 7 and summary["duplicates"] == 40
    assert summary["caught_up"] is True and summary["lag"] == 0
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)

    lake = lake_for(config)
    stream = load_config(config).config.stream
    ends = LocalConsumer(stream).log.end_offsets()
    assert committed_offsets(config) == {p: end - 1 for p, end in ends.items()}
    dead = lake.read(WEBHOOK_DEAD_LETTERS).to_pylist()
    assert len(dead) == 7 and all(d["error"] for d in dead)
    # every commit of the events table carries its run's metadata
    assert all(h.get("stage") == "stream.drain" for h in lake.history(WEBHOOK_EVENTS)[:-1])

    again = CliRunner().invoke(st_app, ["--config", str(config), "stream", "drain", "-f", "json"])
    assert orjson.loads(again.stdout)[0]["messages"] == 0
    produce(config, outbound(events[:10]))  # Helius redelivers old events much later
    late = CliRunner().invoke(st_app, ["--config", str(config), "stream", "drain", "-f", "json"])
    assert orjson.loads(late.stdout)[0]["duplicates"] == 10
    assert len(event_signatures(config)) == 500


def test_limits_stop_the_drain_early(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 50})
    produce(config, outbound(helius_events(300)))
    result = drainer(config, "r1").run(DrainLimits(max_messages=120))
    assert result.messages == 120 and not result.caught_up
    assert sum(result.lag.values()) == 180
    assert len(event_signatures(config)) == 120
    assert drainer(config, "r2").run(DrainLimits()).messages == 180


def test_following_drain_hands_each_commit_over_and_stops_when_asked(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 50, "stream.max_latency_seconds": 0.05})
    produce(config, outbound(helius_events(120)))
    loaded = load_config(config)
    stop = threading.Event()
    handed: list[tuple[int, int]] = []

    def committed(rows: pa.Table, version: int) -> None:
        handed.append((rows.num_rows, version))
        if sum(n for n, _ in handed) >= 120:
            stop.set()  # as SIGTERM does in `st follow`

    stream = loaded.config.stream
    follow = Drainer(lake_for(config), LocalConsumer(stream), stream,
                     CommitMeta("f", "follow", "h"), committed=committed)  # fmt: skip
    result = follow.run(DrainLimits(follow=True, max_seconds=60, stop=stop))
    assert result.messages == 120 and sum(n for n, _ in handed) == 120
    versions = [v for _, v in handed]
    assert versions == sorted(set(versions))  # one hand-over per commit, in commit order
    assert lake_for(config).version(WEBHOOK_EVENTS) == versions[-1]
    assert len(event_signatures(config)) == 120


def test_a_following_drain_says_when_it_caught_up_after_its_backlog(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 50, "stream.max_latency_seconds": 0.05})
    produce(config, outbound(helius_events(120)))
    stream = load_config(config).config.stream
    stop = threading.Event()
    committed_when_caught_up: list[int] = []
    commits: list[int] = []

    def caught_up() -> None:
        committed_when_caught_up.append(sum(commits))
        stop.set()

    follow = Drainer(lake_for(config), LocalConsumer(stream), stream,
                     CommitMeta("f", "follow", "h"),
                     committed=lambda rows, _: commits.append(rows.num_rows),
                     caught_up=caught_up)  # fmt: skip
    follow.run(DrainLimits(follow=True, max_seconds=60, stop=stop))
    # not before the backlog was read and its last commit settled
    assert committed_when_caught_up[0] == 120


def a_batch_held_while_another_drain_takes_all(
    tmp_path: Path,
) -> tuple[Path, list[dict[str, Any]], Drainer, list[StreamMessage]]:
    """Drain A reads a batch; drain B then commits every one of the 400 events."""
    config = write_config(tmp_path, {"stream.batch_size": 100})
    events = helius_events(400)
    produce(config, outbound(events))
    first = drainer(config, "A")
    first.consumer.start(first.resolve_offsets)  # A's commits go against the table as read here
    batch = first.consumer.poll(100, 1 << 30, 1.0)
    assert batch
    assert drainer(config, "B").run(DrainLimits()).events_written == 400  # meanwhile
    return config, events, first, batch


def test_a_concurrent_commit_of_the_same_partitions_fails_ours_and_we_reseek(
    tmp_path: Path,
) -> None:
    config, events, first, batch = a_batch_held_while_another_drain_takes_all(tmp_path)
    first.commit_batch(batch)  # made against the snapshot A read its offsets from
    assert first.result.conflicts == 1 and first.result.events_written == 0
    rest = first.run(DrainLimits())  # re-seeked from the table: nothing left to do
    assert rest.messages == 0 and rest.caught_up
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)


def test_a_second_drain_on_the_same_host_exits_75(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state_dir = load_config(config).config.runtime.state_dir
    with stage_lock(state_dir, "stream.drain", "holder"):
        proc = subprocess.run(
            [str(ST), "--config", str(config), "stream", "drain"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 75
    assert "stream.drain is already running" in proc.stderr


def test_offsets_already_in_our_newer_snapshot_are_not_written_again(tmp_path: Path) -> None:
    """A reader behind the table (another drain committed its offsets, and our snapshot has
    since moved past that commit) must not commit those offsets a second time."""
    config, events, first, batch = a_batch_held_while_another_drain_takes_all(tmp_path)
    # A reads the table again (as after one of its own commits): B's offsets are in it
    first.resolve_offsets(first.consumer.assignment(), quiet=True)
    first.commit_batch(batch)
    assert first.result.conflicts == 1 and first.result.events_written == 0
    assert first.run(DrainLimits()).messages == 0
    assert not any(h.get("run_id") == "A" for h in lake_for(config).history(WEBHOOK_EVENTS))
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)


def test_a_signature_redelivered_with_another_slot_is_a_duplicate(tmp_path: Path) -> None:
    """Past the receiver's dedupe window the same signature can come back with another slot
    (or none): the duplicate check covers the whole table, not the batch's slot range."""
    config = write_config(tmp_path, {"stream.batch_size": 50})
    events = helius_events(200)
    produce(config, outbound(events))
    assert drainer(config, "r1").run(DrainLimits()).events_written == 200
    again = [dict(e, slot=e["slot"] + 10_000_000) for e in events[:5]]
    again += [{k: v for k, v in e.items() if k != "slot"} for e in events[5:8]]
    produce(config, outbound(again + helius_events(3, seed=5, start_time=1_790_000_000)))
    result = drainer(config, "r2").run(DrainLimits())
    assert result.duplicates == 8 and result.events_written == 3
    assert Counter(event_signatures(config)).most_common(1)[0][1] == 1
