"""Run-ledger benchmark: what `ops.runs` costs per stage run, and `st runs list` on a year of runs.

Two measurements, each taken for every source tree given (`--tree`, default this one), the
trees interleaved round by round so the machine's drifting load hits them alike:

- `overhead`: an empty stage run through `stage_run` (lock, ledger, close) on a lake whose
  ledger already holds `--history` runs, one commit each (a cron day of drains); per tree
  the median wall time of a run and the Delta versions `ops.runs` gained per run.
- `list`: `st runs list --limit 50` (a process, as cron users run it) on one ledger of
  `--big-rows` runs written by appends of 5,000 rows plus `--small-commits` one-row
  commits, before and after compacting it; median of `--repeat` per tree.

Every tree reads the same tables: the table format did not change. Prints a table and
writes bench/results/run_ledger.json.

Usage: .venv/bin/python -m bench.run_ledger [--tree DIR ...] [--history 300] [--runs 20]
       [--big-rows 95000] [--small-commits 5000] [--repeat 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
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

ROOT = Path(__file__).resolve().parent.parent
ST = str(Path(sys.executable).with_name("st"))

# Run in a process whose path starts with the tree under test: `runs` empty stage runs on
# the config's lake, then print their median seconds and ops.runs versions per run.
OVERHEAD = """\
import json, statistics, sys, time
from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.tables import RUNS
from smarttrader_cli.ops.runs import stage_run
from smarttrader_cli.stages.contract import StageContext
app = AppContext(config_path=sys.argv[1])
ctx = StageContext.of(app.loaded, app.lake)
runs = int(sys.argv[2])
with stage_run(ctx, "bench.empty"):
    pass  # warm: imports, the table checked against the registry
before = app.lake.version(RUNS)
times = []
for _ in range(runs):
    start = time.perf_counter()
    with stage_run(ctx, "bench.empty"):
        pass
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times),
                  "versions_per_run": (app.lake.version(RUNS) - before) / runs}))
"""


def write_config(directory: Path) -> Path:
    """A config every tree accepts: only keys all of them know, local dirs under `directory`."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    local = {
        "lake": {"root": str(directory / "lake")},
        "runtime": {"state_dir": str(directory / "state"), "log_dir": str(directory / "logs")},
        "webhook": {"spool_dir": str(directory / "spool")},
        "stream": {"local_dir": str(directory / "stream")},
        "memory": {"min_free_mb": 64},
    }
    path = directory / "smarttrader.yaml"
    path.write_text(yaml.safe_dump(local))
    return path


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env["PYTHONPATH"] = str(tree)
    return env


def write_ledger(root: Path, big_rows: int, small_commits: int, history: int = 0) -> None:
    """A ledger of `big_rows` runs in 5,000-row appends, then `small_commits` one-row ones."""
    import pyarrow as pa

    from smarttrader_cli.lake.commits import CommitMeta
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.lake.tables import RUNS

    lake = Lake(str(root))
    meta = CommitMeta("bench", "bench", "cfg")
    total = big_rows + small_commits
    start = datetime.now(UTC) - timedelta(minutes=5 * total)
    stages = ["stream.drain"] * 9 + ["silver.webhooks", "bronze.prices", "gold.flows"]

    def row(i: int) -> dict[str, Any]:
        began = start + timedelta(minutes=5 * i)
        return {
            "run_id": f"{began:%Y%m%dT%H%M%SZ}-{i:06x}",
            "stage": stages[i % len(stages)],
            "status": "succeeded",
            "started_at": began,
            "ended_at": began + timedelta(seconds=2),
            "duration_seconds": 2.0,
            "rows_in": 200,
            "rows_out": 200,
            "config_hash": "0123456789abcdef",
            "args": json.dumps({"max_seconds": 240}),
            "host": "bench",
            "pid": 1000 + i % 30000,
        }

    lake.ensure_table(RUNS)
    table = lake.table(RUNS)  # appended to in place: no reload of the log per commit
    for first in range(0, big_rows, 5000):
        rows = [row(i) for i in range(first, min(first + 5000, big_rows))]
        lake.append(RUNS, pa.Table.from_pylist(rows, schema=RUNS.schema), meta, snapshot=table)
    for i in range(big_rows, total):
        lake.append(RUNS, pa.Table.from_pylist([row(i)], schema=RUNS.schema), meta, snapshot=table)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-800:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, help="source tree (repeatable)")
    parser.add_argument("--history", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--big-rows", type=int, default=95_000)
    parser.add_argument("--small-commits", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    sys.path.insert(0, str(trees[-1]))
    work = Path(tempfile.mkdtemp(prefix="run-ledger-"))
    results: list[dict[str, Any]] = []
    try:
        overhead: dict[Path, list[dict[str, float]]] = {t: [] for t in trees}
        grown = work / "grown"
        write_ledger(grown, 0, args.history)
        for round_ in range(args.rounds):
            for tree in trees:
                base = work / f"overhead-{round_}-{tree.name}"
                config = write_config(base)
                shutil.copytree(grown, base / "lake")
                done = subprocess.run(
                    [sys.executable, "-c", OVERHEAD, str(config), str(args.runs)],
                    env=env_for(tree), cwd=work, capture_output=True, text=True, check=True,
                )  # fmt: skip
                overhead[tree].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for tree, samples in overhead.items():
            if not samples:  # --rounds 0: the listing only
                continue
            results.append(
                {
                    "tree": str(tree),
                    "measure": f"empty stage run, ledger of {args.history} commits",
                    "median_ms": round(1000 * statistics.median(s["median_s"] for s in samples), 1),
                    "ops.runs versions per run": samples[0]["versions_per_run"],
                }
            )

        print(results, f"load average {os.getloadavg()}", flush=True)
        config = write_config(work / "list")
        started = time.perf_counter()
        write_ledger(work / "list" / "lake", args.big_rows, args.small_commits)
        built = time.perf_counter() - started
        rows = args.big_rows + args.small_commits
        for state in ("not compacted", "compacted"):
            if state == "compacted":
                from smarttrader_cli.lake.store import Lake
                from smarttrader_cli.lake.tables import RUNS

                Lake(str(work / "list" / "lake")).optimize(RUNS)
            times: dict[Path, list[float]] = {t: [] for t in trees}
            cmd = [ST, "--config", str(config), "runs", "list", "--limit", "50"]
            for _ in range(args.repeat):
                for tree in trees:
                    times[tree].append(timed(cmd, env_for(tree), work))
            for tree in trees:
                results.append(
                    {
                        "tree": str(tree),
                        "measure": f"st runs list --limit 50, {rows} rows, "
                        f"{args.small_commits} one-row commits, {state}",
                        "median_ms": round(1000 * statistics.median(times[tree]), 1),
                        "ops.runs versions per run": "",
                    }
                )
            print(results[-len(trees) :], f"load average {os.getloadavg()}", flush=True)
        print(f"ledger built in {built:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from bench.report import write_results

    columns = ["tree", "measure", "median_ms", "ops.runs versions per run"]
    write_results(ROOT / "bench" / "results" / "run_ledger.json", columns, results)


if __name__ == "__main__":
    main()
