"""Start-up benchmark: wall time of `st --help` and `st <group> --help`, median of N runs.

Each run is a fresh `st` process (the console script of this interpreter's environment) with
PYTHONPATH set to the source tree measured, output to a pipe. Reports the median wall and CPU
time (user + system, from the child's rusage) per command; a bare `python -c pass` is the floor
every command pays. With `--baseline DIR` the runs of an earlier version are interleaved with
the current one's (baseline, current, baseline, ...), so both see the same machine load; the
1-minute load average is printed before and after. Writes bench/results/startup.json.

Usage: .venv/bin/python -m bench.startup [--repeat 10] [--baseline DIR]
       (DIR: git worktree add /tmp/base main, or git archive REV | tar -x -C DIR)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import write_results
from smarttrader_cli.cli.main import GROUPS, ROOT_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "startup.json"
ST = Path(sys.executable).parent / "st"
TARGET_MS = 250


def commands() -> list[list[str]]:
    """`--help` of the root, of every group and of the root's own commands."""
    names = [*GROUPS, *(name for name, _function in ROOT_COMMANDS)]
    return [["--help"], *([name, "--help"] for name in names)]


def timed(argv: list[str], source: str, cwd: str) -> tuple[float, float]:
    """(wall ms, CPU ms) of one process run with `source` first on the import path."""
    env = {**os.environ, "PYTHONPATH": source}
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode} with PYTHONPATH={source}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def run_all(versions: list[tuple[str, str]], repeat: int) -> dict[tuple[str, str], list[Any]]:
    """Every command under every version, `repeat` rounds, versions alternating in each."""
    samples: dict[tuple[str, str], list[Any]] = {}
    cases = [("python -c pass", [sys.executable, "-c", "pass"])]
    cases += [(" ".join(["st", *args]), [str(ST), *args]) for args in commands()]
    # a neutral directory: `python -m` and the console script must not import from the cwd
    with tempfile.TemporaryDirectory(prefix="st-bench-startup-") as cwd:
        for _ in range(repeat):
            for label, argv in cases:
                for version, source in versions:
                    samples.setdefault((label, version), []).append(timed(argv, source, cwd))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs per command and version")
    parser.add_argument(
        "--baseline", type=Path, help="source tree of an earlier version, run side by side"
    )
    args = parser.parse_args()
    if not ST.exists():
        sys.exit(f"{ST} missing: install the project into this environment (pip install -e .)")
    versions = [("current", str(ROOT))]
    if args.baseline is not None:
        versions.insert(0, ("baseline", str(args.baseline.resolve())))
    load_before = round(os.getloadavg()[0], 2)
    samples = run_all(versions, args.repeat)
    load_after = round(os.getloadavg()[0], 2)
    rows: list[dict[str, Any]] = []
    for label in dict.fromkeys(label for label, _version in samples):
        row: dict[str, Any] = {"command": label}
        for version, _source in versions:
            walls = [wall for wall, _cpu in samples[(label, version)]]
            cpus = [cpu for _wall, cpu in samples[(label, version)]]
            row[f"{version}_wall_ms"] = round(statistics.median(walls))
            row[f"{version}_cpu_ms"] = round(statistics.median(cpus))
        if args.baseline is not None:
            row["current/baseline"] = round(row["current_wall_ms"] / row["baseline_wall_ms"], 2)
        row["under_250ms"] = row["current_wall_ms"] < TARGET_MS
        rows.append(row)
    for row in rows:
        row["load_avg_1m"] = f"{load_before}-{load_after}"
    columns = [key for key in rows[0] if key != "load_avg_1m"] + ["load_avg_1m"]
    print(
        f"median of {args.repeat} runs each; load average {load_before} before, {load_after} after"
    )
    write_results(RESULTS, columns, rows)


if __name__ == "__main__":
    main()
