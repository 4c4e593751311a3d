"""Drain benchmark: a backlog of webhook events in the local log drained into Delta.

For each size, writes N simulated Helius events (about 1.5 KB each, unique signatures,
increasing slots) into a fresh local stream log, then runs `st stream drain` as its own
process and samples its resident memory. Reports events/s (the drain's own timer and
wall time including start-up) and peak RSS, checks the table holds N distinct
signatures, and writes bench/results/drain.json.

With `--repeat N` every size is filled and drained N times and the run with the median
events/s is reported, all runs' numbers alongside.

Usage: .venv/bin/python -m bench.drain [--sizes 100000 1000000] [--batch-size 5000]
       [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.report import write_results
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stream.backend import OutboundEvent
from smarttrader_cli.stream.local_log import LocalProducer
from tests.harness import write_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "drain.json"
ST = Path(sys.executable).parent / "st"


def fill(config: Path, count: int) -> int:
    """Write `count` events: simulator templates with fresh signatures and slots."""
    templates = enhanced_swaps(Market(SimSettings(seed=11)), 2000, start_time=1_760_000_000)
    producer = LocalProducer(load_config(config).config.stream)
    now = int(time.time() * 1e6)
    size = 0
    chunk: list[OutboundEvent] = []
    for i in range(count):
        event = dict(templates[i % len(templates)])
        event["signature"] = f"{i:012d}{event['signature'][12:]}"
        event["slot"] = 300_000_000 + i // 4
        value = orjson.dumps(event)
        size += len(value)
        chunk.append(OutboundEvent(event["signature"].encode(), value, now))
        if len(chunk) == 10_000:
            producer.publish(chunk, timeout=30)
            chunk = []
    if chunk:
        producer.publish(chunk, timeout=30)
    producer.close()
    return size


def drain(config: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["ST_CONFIG"] = str(config)
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(ST), "stream", "drain", "--format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"drain failed: {err.decode()}")
    summary = orjson.loads(out)[0]
    return {"summary": summary, "wall_seconds": wall, "peak_rss_mb": peak / 2**20}


def run_size(n: int, batch_size: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="st-bench-drain-") as tmp:
        overrides = {"stream.batch_size": batch_size} if batch_size else {}
        config = write_config(Path(tmp), overrides)
        t = time.monotonic()
        size = fill(config, n)
        fill_s = time.monotonic() - t
        load_before = round(os.getloadavg()[0], 2)
        run = drain(config)
        load_after = round(os.getloadavg()[0], 2)
        lake = Lake.from_config(load_config(config))
        sigs = lake.read(WEBHOOK_EVENTS, columns=["signature"]).column(0)
        distinct = len(set(sigs.to_pylist()))
        s = run["summary"]
        return {
            "events": n,
            "backlog_mb": round(size / 2**20),
            "fill_seconds": round(fill_s, 1),
            "drain_seconds": s["seconds"],
            "wall_seconds": round(run["wall_seconds"], 1),
            "events_per_s": round(n / s["seconds"]),
            "events_per_s_wall": round(n / run["wall_seconds"]),
            "peak_rss_mb": round(run["peak_rss_mb"]),
            "commits": s["commits"],
            "rows": len(sigs),
            "distinct_signatures": distinct,
            "exactly_once": distinct == n == len(sigs),
            "load_avg_1m_before": load_before,
            "load_avg_1m_after": load_after,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch-size", type=int, default=None, help="stream.batch_size")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (median)")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        runs = []
        for _ in range(args.repeat):
            runs.append(run_size(n, args.batch_size))
            print(runs[-1], flush=True)
        runs.sort(key=lambda r: r["events_per_s"])
        median = dict(runs[len(runs) // 2])
        median["runs"] = [
            {k: r[k] for k in ("events_per_s", "peak_rss_mb", "load_avg_1m_before")} for r in runs
        ]
        median["max_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        median["exactly_once"] = all(r["exactly_once"] for r in runs)
        rows.append(median)
    cols = ["events", "backlog_mb", "events_per_s", "events_per_s_wall", "peak_rss_mb",
            "max_peak_rss_mb", "commits", "exactly_once", "load_avg_1m_before"]  # fmt: skip
    write_results(RESULTS, cols, rows)


if __name__ == "__main__":
    main()
