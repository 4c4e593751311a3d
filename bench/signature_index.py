"""Signature index benchmark: what a drain's duplicate check costs as bronze ages (issue 16).

For each size N, builds a Delta table of N signatures (one column, as the index reads it)
and then runs `--drains` drains against it, each in a fresh process as cron runs them:
restore the index from the state directory and check a batch of 200 new signatures
(`check_ms`, `SignatureIndex.drop_existing`), commit them (not timed), save the index
(`save_ms`, `persist`). It reports the medians and the process's peak RSS. Every size
starts with one untimed drain that builds and stores the index.

With `--base TREE` (another checkout, e.g. `git worktree add /tmp/base main`) the drains
also run with that tree's code, on a copy of the table with a state directory of its own,
alternating with this tree's, and the two are printed side by side. The worker runs this
file with PYTHONPATH set to the tree, so it imports nothing from bench/.

Usage: .venv/bin/python -m bench.signature_index [--sizes 400000 5000000 19000000]
       [--drains 7] [--base /tmp/base]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "signature_index.json"
BATCH = 200
CHUNK = 2_000_000


def signatures(start: int, count: int) -> Any:
    import pyarrow as pa

    return pa.table(
        {"signature": [f"bench-signature-{i:020d}" for i in range(start, start + count)]}
    )


def build(table: Path, size: int) -> None:
    """A table of `size` signatures, in files of CHUNK rows (a compacted table's shape)."""
    from deltalake import write_deltalake

    for start in range(0, size, CHUNK):
        write_deltalake(str(table), signatures(start, min(CHUNK, size - start)), mode="append")


def drain(table: Path, state: Path, first: int) -> dict[str, float]:
    """One drain's index work: restore and check a batch, commit it, save (in this tree)."""
    from deltalake import DeltaTable, write_deltalake

    from smarttrader_cli.stream.signatures import SignatureIndex

    batch = signatures(first, BATCH)
    snapshot = DeltaTable(str(table))
    index = SignatureIndex(str(table), {}, store_dir=state)
    started = time.perf_counter()
    kept = index.drop_existing(snapshot, batch)
    checked = time.perf_counter()
    if kept.num_rows != BATCH:
        sys.exit(f"{BATCH - kept.num_rows} new signatures were taken for duplicates")
    before = snapshot.version()
    write_deltalake(str(table), kept, mode="append")
    index.wrote(before, before + 1)
    saving = time.perf_counter()
    index.persist()
    done = time.perf_counter()
    return {
        "check_ms": (checked - started) * 1000,
        "save_ms": (done - saving) * 1000,
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory since its exec (getrusage's would count the
    parent's at the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_drain(tree: Path, table: Path, state: Path, first: int) -> dict[str, float]:
    """`drain` in a fresh process with `tree`'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (
        "import sys, orjson; sys.path.insert(0, sys.argv[1]); import signature_index as b; "
        "print(orjson.dumps(b.drain(*map(__import__('pathlib').Path, sys.argv[2:4]), "
        "int(sys.argv[4]))).decode())"
    )
    args = [str(Path(__file__).parent), str(table), str(state), str(first)]
    # run in the tree: `-c` puts the working directory first on sys.path
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=tree
    )
    if done.returncode != 0:
        sys.exit(f"drain with {tree} failed: {done.stderr.strip()[-600:]}")
    result: dict[str, float] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(size: int, drains: int, trees: dict[str, Path], workdir: Path) -> dict[str, Any]:
    table = workdir / "table"
    shutil.rmtree(workdir, ignore_errors=True)
    build(table, size)
    lakes = {}
    for name in trees:
        lakes[name] = workdir / name / "table"
        shutil.copytree(table, lakes[name])
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for n in range(drains + 1):
        for name, tree in trees.items():
            result = run_drain(tree, lakes[name], workdir / name / "state", size + n * BATCH)
            if n:  # the first drain builds the index
                samples[name].append(result)
    row: dict[str, Any] = {"rows": size, "load_avg_1m": round(os.getloadavg()[0], 1)}
    for name, runs in samples.items():
        for metric in ("check_ms", "save_ms", "peak_rss_mb"):
            row[f"{name}_{metric}"] = round(statistics.median(r[metric] for r in runs), 1)
    shutil.rmtree(workdir, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[400_000, 5_000_000, 19_000_000])
    parser.add_argument("--drains", type=int, default=7)
    parser.add_argument("--base", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.base:
        trees["base"] = args.base.resolve()
    workdir = Path(tempfile.mkdtemp(prefix="st-sigindex-"))
    rows = []
    try:
        for size in args.sizes:
            rows.append(measure(size, args.drains, trees, workdir / str(size)))
            print(orjson.dumps(rows[-1]).decode(), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    from bench.report import write_results

    write_results(RESULTS, list(rows[0]), rows)


if __name__ == "__main__":
    main()
