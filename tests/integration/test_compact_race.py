"""Compaction racing the drain and a merging stage: every event lands once, the offsets
stay right, and a compaction that loses a commit race retries.

Threads in one process, each with its own Lake (as separate cron jobs have): a producer
publishing events (with redeliveries) received over three days to the local log, drains run back to back as cron
runs them, a writer merging into silver.webhook_swaps as `st silver webhooks` does, and
compactions of both tables in a loop, each followed by a checkpoint and log cleanup.
Until one commit race on silver.webhook_swaps was lost (and retried), the compactor
waits for a merge between opening that table and compacting it, so one surely is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from smarttrader_cli.config import LoadedConfig, load_config
from smarttrader_cli.lake.maintenance import compact_table
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS, WEBHOOK_SWAPS, TableSpec
from smarttrader_cli.stream.drain import Drainer, DrainLimits
from smarttrader_cli.stream.local_log import LocalConsumer
from tests.harness import write_config
from tests.stream_support import (
    committed_offsets,
    event_signatures,
    helius_events,
    lake_for,
    produce,
    with_faults,
)

EVENTS = 3000
MIN_SWAP_ROUNDS = 30
MB = 2**20
DEADLINE_SECONDS = 600
RECEIVED_FROM_US = 1_760_054_400 * 10**6  # 2025-10-10 00:00 UTC


class Worker(threading.Thread):
    """A thread whose exception fails the test."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = exc


class StaleLake(Lake):
    """A lake whose snapshots of silver.webhook_swaps go stale before it acts on them
    (a merge commits in between, as beside a long compaction), until `raced()`."""

    def __init__(self, loaded: LoadedConfig, raced: Callable[[], bool]) -> None:
        base = Lake.from_config(loaded)
        super().__init__(base.root, base.storage_options, base.commit_retries, base.properties)
        self.raced = raced

    def table(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        dt = super().table(spec, version)
        if spec is WEBHOOK_SWAPS and version is None and not self.raced():
            waited = time.monotonic() + 10
            while super().table(spec).version() == dt.version() and time.monotonic() < waited:
                time.sleep(0.02)
        return dt


def swaps(round_: int) -> pa.Table:
    """Ten new legs (a new file, as new events make), and one leg of three rounds back
    updated (its file rewritten, as a late event does)."""
    keys = [f"s{round_}-{i}" for i in range(10)] + ([f"s{round_ - 3}-0"] if round_ >= 3 else [])
    return pa.table(
        {
            "signature": keys,
            "wallet": ["w"] * len(keys),
            "leg": pa.array([0] * len(keys), pa.int32()),
            "amount": [float(round_)] * len(keys),
        }
    )


def expected_swaps(rounds: int) -> dict[str, float]:
    want = {f"s{r}-{i}": float(r) for r in range(rounds) for i in range(10)}
    want.update({f"s{r}-0": float(r + 3) for r in range(rounds - 3)})
    return want


def test_drains_merges_and_compactions_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 25, "stream.max_latency_seconds": 0.05})
    events = helius_events(EVENTS)
    values, _ = with_faults(events, duplicates=300, bad=0)
    # received a minute apart over three days: each drain's batch can span two day partitions
    # of bronze, and a redelivery lands in another day than its first copy
    values = [
        replace(v, received_at_us=RECEIVED_FROM_US + 60_000_000 * i) for i, v in enumerate(values)
    ]
    stream = load_config(config).config.stream
    produced = threading.Event()
    drained = threading.Event()
    merged = threading.Event()
    deadline = time.monotonic() + DEADLINE_SECONDS
    drains: list[int] = []
    compactions: dict[str, list[int]] = {WEBHOOK_EVENTS.name: [], WEBHOOK_SWAPS.name: []}

    def producer() -> None:
        for i in range(0, len(values), 100):
            produce(config, values[i : i + 100])
            time.sleep(0.02)
        produced.set()

    def drainer() -> None:
        n = 0
        while time.monotonic() < deadline:
            done = produced.is_set()
            meta = CommitMeta(f"drain-{n}", "stream.drain", "cfg")
            result = Drainer(lake_for(config), LocalConsumer(stream), stream, meta).run(
                DrainLimits()
            )
            drains.append(result.commits)
            n += 1
            if done and result.caught_up:
                break
        drained.set()

    rounds: list[int] = []

    def raced() -> bool:
        return any("webhook_swaps lost a commit race" in r.getMessage() for r in caplog.records)

    def merger() -> None:  # until the drains are done and a compaction met a merge
        lake = lake_for(config)
        r = 0
        while (r < MIN_SWAP_ROUNDS or not drained.is_set() or not raced()) and (
            time.monotonic() < deadline
        ):
            lake.merge(WEBHOOK_SWAPS, swaps(r), CommitMeta(f"swaps-{r}", "silver.webhooks", "c"))
            r += 1
        rounds.append(r)
        merged.set()

    def compactor() -> None:
        lake = StaleLake(load_config(config), raced)
        while time.monotonic() < deadline:
            finished = drained.is_set() and merged.is_set()
            for spec in (WEBHOOK_EVENTS, WEBHOOK_SWAPS):
                if lake.exists(spec):
                    done = compact_table(lake, spec, 64 * MB, min_files=2)
                    compactions[spec.name].append(done.files_removed)
            if finished:
                break

    workers = [
        Worker(name, target)
        for name, target in (
            ("producer", producer),
            ("drainer", drainer),
            ("merger", merger),
            ("compactor", compactor),
        )
    ]
    with caplog.at_level(logging.INFO, logger="st.lake"):
        for w in workers:
            w.start()
        for w in workers:
            w.join(DEADLINE_SECONDS + 60)
    for w in workers:
        assert w.error is None, f"{w.name} failed: {w.error!r}"
        assert not w.is_alive(), f"{w.name} did not finish"

    # every event exactly once, offsets at the end of the log
    assert Counter(event_signatures(config)) == Counter(e["signature"] for e in events)
    ends = LocalConsumer(stream).log.end_offsets()
    assert committed_offsets(config) == {p: end - 1 for p, end in ends.items()}
    days = lake_for(config).read(WEBHOOK_EVENTS, columns=["received_date"])["received_date"]
    assert len(set(days.to_pylist())) == 3 and days.null_count == 0
    # the merges all landed, each leg once with its last value
    rows = lake_for(config).read(WEBHOOK_SWAPS, columns=["signature", "amount"]).to_pylist()
    want = expected_swaps(rounds[0])
    assert len(rows) == len(want)
    assert {row["signature"]: row["amount"] for row in rows} == want
    # compactions really ran beside the writers, and lost races were retried
    assert sum(1 for n in compactions[WEBHOOK_EVENTS.name] if n) >= 3, compactions
    assert sum(drains) > 40, drains
    assert any(compactions[WEBHOOK_SWAPS.name]), compactions
    # (whichever commits second of a compaction and a merge that rewrite one file retries)
    races = [r.getMessage() for r in caplog.records if "lost a commit race" in r.getMessage()]
    assert any("silver.webhook_swaps lost" in r for r in races), (
        f"no compaction met a merge in {len(compactions[WEBHOOK_SWAPS.name])} compactions"
    )
