"""Aging benchmark: days of cron on one lake, and what each stage's run costs as it ages.

One lake and one local stream log, driven the way crontab/smarttrader.crontab drives them,
cycle by cycle (a cycle is one 5-minute cron tick, on a simulated clock):

- every cycle, `--events` new Helius events land in the stream and `stream drain` runs;
- every `--webhooks-every` cycles, 15 minutes of SOL prices land in bronze.token_prices
  (what `bronze prices` adds) and `silver webhooks` runs, repricing the day before the
  simulated clock (not the real one, which would reprice all or none of the run);
- every `--compact-every` cycles `ops compact` runs, every `--cleanup-every` `ops cleanup`;
- every `--cli-every` cycles the drain runs as its own `st stream drain` process instead (its
  wall time includes start-up), then `st runs list` runs as a process.

The stages run in this process through their stage functions (lock, ledger row and commits
as from the CLI), so a cycle costs the stage's own work, not an interpreter start; the
sampled processes show start-up on top. Per stage it prints the median run time of the first,
middle and last tenth of its runs and last/first, and writes bench/results/aging.json.
Target (issue 16): the last tenth within 10 % of the first.

Retention is real time, and an hour of real time holds days of simulated cron: left alone,
no log entry of a frequently written table would expire in the run, where a deployment's
expire after `lake.frequent_log_retention_hours` (24 h: 288 cycles). So at cycle 30 the
bench sets that retention to `--retention-cycles` cycles at the pace of the first 30 (the
tables take it at the next `ops compact`), and reports the seconds it set; the other
retentions (168 h, more cycles than a run has) are left as they are.

The machine's load drifts over an hour, so in the measured tenths every drain and silver
webhooks run is followed by the same run on a fresh lake (one rebuilt every 10 cycles);
`aged/fresh` is the median of those per-run ratios, and its last/first is the drift-free
answer.

Usage: .venv/bin/python -m bench.aging [--cycles 2000] [--events 200] [--compact-every 12]
       [--cleanup-every 288] [--cli-every 100] [--retention-cycles 288] [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from bench.report import write_results
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.commits import CommitMeta
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import TABLES, TOKEN_PRICES
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stages.contract import StageContext, StageResult
from smarttrader_cli.stages.prices import WSOL
from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.local_log import LocalProducer
from tests.harness import write_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "aging.json"
ST = Path(sys.executable).parent / "st"
TICK_SECONDS = 300  # one cron tick of `*/5 * * * *`
RETENTION_PACE_CYCLES = 30  # the cycles whose pace sets the scaled log retention


class Cron:
    """The simulated deployment: its config, its clock and the events it is sent."""

    def __init__(self, workdir: Path, cycles: int, events: int) -> None:
        self.workdir = workdir
        self.config = write_config(workdir)
        self.events = events
        self.clock = int(time.time()) - cycles * TICK_SECONDS
        self.templates = enhanced_swaps(Market(SimSettings(seed=11)), 2000, start_time=self.clock)
        self.sent = 0
        self.priced_through = self.clock - 3600

    def context(self) -> StageContext:
        """A fresh context, as each cron run builds its own."""
        loaded = load_config(self.config)
        return StageContext.of(loaded, Lake.from_config(loaded))

    def publish(self) -> None:
        """One tick's events, with fresh signatures, slots and times on the simulated clock."""
        producer = LocalProducer(load_config(self.config).config.stream)
        batch = []
        for i in range(self.events):
            n = self.sent + i
            event = dict(self.templates[n % len(self.templates)])
            event["signature"] = f"{n:012d}{event['signature'][12:]}"
            event["slot"] = 300_000_000 + n // 4
            event["timestamp"] = self.clock + i * TICK_SECONDS // self.events
            value = orjson.dumps(event)
            # received on the simulated clock too: bronze's day partitions follow it
            batch.append(
                OutboundEvent(event["signature"].encode(), value, event["timestamp"] * 10**6)
            )
        producer.publish(batch, timeout=30)
        producer.close()
        self.sent += self.events

    def add_prices(self, ctx: StageContext) -> None:
        """The SOL prices `bronze prices` would have stored up to the clock: one a minute."""
        times = list(range(self.priced_through + 60, self.clock + TICK_SECONDS + 1, 60))
        if not times:
            return
        rows = pa.table(
            {
                "token_address": [WSOL] * len(times),
                "unix_time": times,
                "price_usd": [150.0 + (t % 3600) / 360 for t in times],
                "source": ["bench"] * len(times),
            }
        )
        ctx.lake.append(TOKEN_PRICES, rows, CommitMeta("bench-aging", "bronze.prices", "bench"))
        self.priced_through = times[-1]

    def tick(self) -> None:
        self.clock += TICK_SECONDS

    def retain_frequent_logs(self, seconds: float) -> None:
        """Keep the frequently written tables' log `seconds` of real time."""
        self.config = write_config(
            self.workdir, {"lake.frequent_log_retention_hours": seconds / 3600}
        )


def stage_function(target: str) -> Callable[..., StageResult]:
    module, _, attribute = target.partition(":")
    found: Callable[..., StageResult] = getattr(importlib.import_module(module), attribute)
    return found


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def cli(cron: Cron, *args: str) -> float:
    """Wall seconds of one `st` process (exit 0 required)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["ST_CONFIG"] = str(cron.config)
    started = time.perf_counter()
    done = subprocess.run([str(ST), *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"st {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return seconds


def tenths(samples: list[float]) -> dict[str, Any]:
    """Median of the first, middle and last tenth of a series (at least one sample each)."""
    first, middle, last = (statistics.median(part) for part in split(samples))
    return {
        "runs": len(samples),
        "first_s": round(first, 4),
        "middle_s": round(middle, 4),
        "last_s": round(last, 4),
        "last_over_first": round(last / first, 3) if first else None,
    }


def split(samples: list[Any]) -> tuple[list[Any], list[Any], list[Any]]:
    """The first, middle and last tenth of a series."""
    n = len(samples)
    size = max(1, n // 10)
    mid = max(0, n // 2 - size // 2)
    return samples[:size], samples[mid : mid + size], samples[-size:]


def measured(cycle: int, cycles: int) -> bool:
    """Whether a cycle falls in a tenth that `tenths` reports."""
    size = max(1, cycles // 10)
    mid = max(1, cycles // 2 - size // 2)
    return cycle <= size or mid <= cycle < mid + size + 3 or cycle > cycles - size - 3


def lake_shape(lake: Lake) -> dict[str, dict[str, int]]:
    """Per table written: its Delta version, live files and log entries."""
    shape = {}
    for spec in TABLES.values():
        if lake.exists(spec):
            dt = lake.table(spec)
            shape[spec.name] = {
                "version": dt.version(),
                "files": len(dt.file_uris()),
                "partitions": len({tuple(p.items()) for p in dt.partitions()}),
                "log_entries": sum(1 for _ in (Path(lake.uri(spec)) / "_delta_log").iterdir()),
            }
    return shape


class Stages:
    """The cron's stages, called in-process."""

    def __init__(self, compact: bool, cleanup: bool) -> None:
        self.drain = stage_function("smarttrader_cli.stages.stream_drain:run")
        self.webhooks = stage_function("smarttrader_cli.stages.silver_webhooks:run")
        self.compact = stage_function("smarttrader_cli.stages.compact:run") if compact else None
        self.cleanup = stage_function("smarttrader_cli.stages.cleanup:run") if cleanup else None

    def drain_tick(self, cron: Cron) -> tuple[float, float, int]:
        """Publish a tick's events and drain them: (wall s, drain's own s, events written)."""
        cron.publish()
        seconds, result = timed(lambda: self.drain(cron.context()))
        return seconds, float(result.details["seconds"]), int(result.details["events_written"])

    def webhooks_tick(self, cron: Cron) -> float:
        ctx = cron.context()
        cron.add_prices(ctx)
        now = datetime.fromtimestamp(cron.clock + TICK_SECONDS, UTC)  # the simulated clock
        return timed(lambda: self.webhooks(ctx, now=now))[0]


class Fresh:
    """A young lake beside the aged one, rebuilt every `cycles`: the load's yardstick.

    A rebuilt lake runs one unmeasured cycle first, so table creation is not compared.
    """

    def __init__(self, workdir: Path, events: int, stages: Stages, cycles: int = 10) -> None:
        self.workdir, self.events, self.stages, self.cycles = workdir, events, stages, cycles
        self.age = cycles

    def cron(self) -> Cron:
        if self.age >= self.cycles:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.current = Cron(self.workdir, self.cycles, self.events)
            self.stages.drain_tick(self.current)
            self.stages.webhooks_tick(self.current)
            self.age = 0
        self.age += 1
        return self.current


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cron = Cron(workdir / "aged", args.cycles, args.events)
    stages = Stages(bool(args.compact_every), bool(args.cleanup_every))
    fresh = Fresh(workdir / "fresh", args.events, stages)
    series: dict[str, list[float]] = {}
    drained = 0
    started = time.monotonic()
    retention_seconds = None

    def record(name: str, seconds: float) -> None:
        series.setdefault(name, []).append(seconds)

    for cycle in range(1, args.cycles + 1):
        cli_cycle = bool(args.cli_every) and cycle % args.cli_every == 0
        young = fresh.cron() if measured(cycle, args.cycles) and not cli_cycle else None
        if cli_cycle:
            cron.publish()
            record("st stream drain (process)", cli(cron, "stream", "drain", "--format", "json"))
            record("st runs list (process)", cli(cron, "runs", "list", "--format", "json"))
            drained += cron.events
        else:
            wall, own, written = stages.drain_tick(cron)
            drained += written
            record("stream drain", wall)
            record("stream drain (own timer)", own)
            if young is not None:
                record("stream drain aged/fresh", wall / stages.drain_tick(young)[0])
        if cycle % args.webhooks_every == 0:
            aged = stages.webhooks_tick(cron)
            record("silver webhooks", aged)
            if young is not None:
                record("silver webhooks aged/fresh", aged / stages.webhooks_tick(young))
        for name, every, housekeeping in (
            ("ops compact", args.compact_every, stages.compact),
            ("ops cleanup", args.cleanup_every, stages.cleanup),
        ):
            if housekeeping is not None and cycle % every == 0:
                record(name, timed(partial(housekeeping, cron.context()))[0])
        cron.tick()
        if cycle == RETENTION_PACE_CYCLES and args.retention_cycles:
            pace = (time.monotonic() - started) / cycle
            retention_seconds = round(args.retention_cycles * pace)
            cron.retain_frequent_logs(retention_seconds)
        if cycle % max(1, args.cycles // 20) == 0:
            print(
                f"cycle {cycle}/{args.cycles}: {drained} events drained, "
                f"{time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    if drained != cron.sent:
        sys.exit(f"drained {drained} of {cron.sent} events")
    return {
        "cycles": args.cycles,
        "events_per_cycle": args.events,
        "wall_seconds": round(time.monotonic() - started),
        "stages": {name: tenths(samples) for name, samples in series.items()},
        "frequent_log_retention_seconds": retention_seconds,
        "lake": lake_shape(cron.context().lake),
        "stream_segments": len(list((workdir / "aged" / "stream").rglob("*.log"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200, help="events per 5-minute cycle")
    parser.add_argument("--webhooks-every", type=int, default=3)
    parser.add_argument("--compact-every", type=int, default=12, help="0: never")
    parser.add_argument("--cleanup-every", type=int, default=288, help="0: never")
    parser.add_argument("--cli-every", type=int, default=100, help="0: never")
    parser.add_argument(
        "--retention-cycles",
        type=int,
        default=288,
        help="log retention of the frequently written tables, in cycles (0: the default 24 h)",
    )
    parser.add_argument("--keep", type=Path, help="build the lake here and keep it")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="st-aging-"))
    try:
        result = run(args, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [{"stage": name, **numbers} for name, numbers in result["stages"].items()]
    columns = ["stage", "runs", "first_s", "middle_s", "last_s", "last_over_first"]
    print(f"{result['cycles']} cycles of {result['events_per_cycle']} events, "
          f"{result['wall_seconds']} s; frequent tables' log retention "
          f"{result['frequent_log_retention_seconds']} s; lake at the end: {result['lake']}")  # fmt: skip
    write_results(RESULTS, columns, rows)
    data = orjson.loads(RESULTS.read_bytes())
    data.update({k: v for k, v in result.items() if k != "stages"})
    RESULTS.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
