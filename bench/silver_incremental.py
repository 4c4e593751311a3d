"""One incremental `st silver webhooks` run after 400 new events, on a grown bronze table.

Builds bronze.webhook_events as cron does (one commit per drain of 200 events) and a SOL
price series that values the legs, runs the stage once in full, then times, trial after
trial, one run after two more drains, on a fresh copy of that lake each time. With
`--against DIR` (a worktree of other code, e.g. `git worktree add /tmp/base main`) each
trial runs both codes, interleaved, each on its own copy, so the machine's load drifts
over both alike. `--spacing-minutes` stamps the drains' `ingested_at` as far apart as a
cron schedule would (0: as fast as they are written, as in a compressed benchmark).

    python bench/silver_incremental.py --events 60000 --trials 5 --against /tmp/base
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from bench.report import write_results
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import TOKEN_PRICES
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stages.prices import WSOL
from tests.harness import write_config
from tests.stream_support import append_bronze

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "silver_incremental.json"
ST = Path(sys.executable).parent / "st"
DRAIN = 200
START = 1_760_000_000


class Events:
    """Simulator templates with fresh signatures: as many distinct events as asked for."""

    def __init__(self) -> None:
        self.templates = enhanced_swaps(Market(SimSettings(seed=11)), 2000, start_time=START)
        self.next = 0

    def take(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            event = dict(self.templates[self.next % len(self.templates)])
            event["signature"] = f"{self.next:012d}{event['signature'][12:]}"
            out.append(event)
            self.next += 1
        return out


def grow(config: Path, events: Events, count: int, spacing: timedelta) -> None:
    """`count` events in drains of DRAIN, plus SOL prices over the events' times."""
    lake = Lake.from_config(load_config(config))
    times = list(range(START - 3600, START + 2 * 2000 + 3600, 60))  # the templates' span
    prices = pa.table(
        {
            "token_address": [WSOL] * len(times),
            "unix_time": times,
            "price_usd": [150.0] * len(times),
        }
    )
    lake.append(TOKEN_PRICES, prices, CommitMeta("bench", "bronze.prices", "h"))
    drains = count // DRAIN
    now = datetime.now(UTC)
    for i in range(drains):
        append_bronze(lake, events.take(DRAIN), now - spacing * (drains + 2 - i))


def silver(config: Path, tree: Path) -> dict[str, Any]:
    """`st silver webhooks` with `tree`'s code: its result row and wall seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.update(ST_CONFIG=str(config), PYTHONPATH=str(tree))
    started = time.monotonic()
    proc = subprocess.run(
        [str(ST), "silver", "webhooks", "--format", "json"], env=env, capture_output=True
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"silver webhooks ({tree}) failed: {proc.stderr.decode()}")
    return {**orjson.loads(proc.stdout)[0], "wall": wall}


def _median(values: Any) -> float | str:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--new", type=int, default=400)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--spacing-minutes", type=float, default=0.0)
    parser.add_argument("--against", type=Path, help="a worktree of the code to compare")
    args = parser.parse_args()
    spacing = timedelta(minutes=args.spacing_minutes)
    trees = {"this": ROOT}
    if args.against:
        trees = {"against": args.against.resolve(), **trees}
    with tempfile.TemporaryDirectory(prefix="st-bench-silver-") as tmp:
        base = Path(tmp)
        events = Events()
        seed = write_config(base / "seed")
        grow(seed, events, args.events, spacing)
        for name, tree in trees.items():  # each code's own first, full run
            shutil.copytree(base / "seed", base / f"grown-{name}")
            silver(write_config(base / f"grown-{name}"), tree)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        loads = []
        for trial in range(args.trials):
            batch = events.take(args.new)
            order = list(trees) if trial % 2 == 0 else list(reversed(trees))
            for name in order:
                work = base / f"trial-{name}"
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(base / f"grown-{name}", work)
                config = write_config(work)
                lake = Lake.from_config(load_config(config))
                for i in range(0, len(batch), DRAIN):
                    append_bronze(lake, batch[i : i + DRAIN])
                loads.append(os.getloadavg()[0])
                runs[name].append(silver(config, trees[name]))
        rows = []
        for name, results in runs.items():
            rows.append(
                {
                    "code": f"{name} ({trees[name]})",
                    "bronze_events": args.events + args.new,
                    "events_read": statistics.median(r["events"] for r in results),
                    "rows_updated": statistics.median(r["updated"] for r in results),
                    "rows_inserted": statistics.median(r["inserted"] for r in results),
                    "repriced": _median(r.get("repriced") for r in results),  # printed since
                    "wall_s_median": round(statistics.median(r["wall"] for r in results), 2),
                    "wall_s_all": [round(r["wall"], 2) for r in results],
                    "load_avg_1m": round(statistics.median(loads), 2),
                }
            )
        columns = list(rows[0])
        write_results(RESULTS, columns, rows)


if __name__ == "__main__":
    main()
