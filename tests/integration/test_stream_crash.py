"""Crash test: SIGKILL `st stream drain` at random moments; the table ends exactly once.

Local backend (no broker): the Kafka variant is in tests/integration/test_stream_kafka.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smarttrader_cli.config import load_config
from smarttrader_cli.stream.local_log import LocalLog
from tests.harness import write_config
from tests.stream_support import (
    committed_offsets,
    dead_letter_keys,
    event_signatures,
    helius_events,
    outbound,
    produce,
    with_faults,
)

EVENTS = 100_000
ST = Path(sys.executable).parent / "st"
KILLS = 20
MIN_BACKLOG = 20_000


def run_drain(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(ST), "stream", "drain", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def drain_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["ST_CONFIG"] = str(config)
    return env


def unconsumed(config: Path) -> int:
    """Messages in the local log past the offsets committed in the table."""
    stream = load_config(config).config.stream
    log = LocalLog(stream)
    committed = committed_offsets(config) if log.identity else {}
    left = 0
    for p, end in log.end_offsets().items():
        version = committed.get(p)
        left += end - (0 if version is None else version + 1)
    return left


def kill_repeatedly(
    env: dict[str, str],
    kills: int,
    rng: random.Random,
    refill: Callable[[], None],
    backlog: Callable[[], int],
) -> list[tuple[int, int]]:
    """Start a drain and SIGKILL it `kills` times at random moments; returns the backlog
    before and after each kill.

    Every run starts with at least MIN_BACKLOG messages to drain (`refill` adds more),
    so however fast the drain is, its kills can land while it is committing.
    """
    started = time.monotonic()
    calibration = run_drain(env, "--max-messages", "1")
    assert calibration.wait(300) == 0
    first_commit = time.monotonic() - started  # start-up plus one commit, on this machine now
    made: list[tuple[int, int]] = []
    while len(made) < kills:
        while (before := backlog()) < MIN_BACKLOG:
            refill()
        proc = run_drain(env)
        time.sleep(rng.uniform(0.3, 1.6) * first_commit)  # kills span start-up and the work
        if proc.poll() is not None:  # it caught up first: more work for the next one
            _out, err = proc.communicate()
            assert proc.returncode == 0, err.decode()
            continue
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        made.append((before, backlog()))
    return made


def test_sigkill_at_random_points_leaves_every_signature_exactly_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"stream.batch_size": 1000})
    events = helius_events(EVENTS)
    values, bad = with_faults(events, duplicates=500, bad=50)
    produce(config, values)
    env = drain_env(config)

    extra: list[dict[str, Any]] = []

    def refill() -> None:
        more = helius_events(10_000, start_time=1_770_000_000 + len(extra))
        extra.extend(more)
        produce(config, outbound(more))

    made = kill_repeatedly(env, KILLS, random.Random(20261125), refill, lambda: unconsumed(config))
    final = run_drain(env)
    _out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()

    assert len(made) == KILLS
    # some kills landed after commits, with work still left (others during start-up)
    assert any(0 < after < before for before, after in made), made
    counts = Counter(event_signatures(config))
    assert set(counts) == {e["signature"] for e in events + extra}
    assert len(counts) == EVENTS + len(extra)
    assert max(counts.values()) == 1
    dead = dead_letter_keys(config)
    assert len(dead) == len(set(dead)) == len(bad)
