"""Compaction benchmark: opening bronze.webhook_events and draining into it, before and
after `st ops compact`, on a table of many small drain commits.

Builds one lake by draining `--commits` small batches (`--per-commit` events each, every
commit with its offsets, as cron's drains write them) with the table properties of an
older `st` (delta-rs's defaults: a checkpoint every 100 commits, 30 days of log), ages
its log by `--age-days` (a table that has been growing that long), and copies it. The
copy gets what `st ops compact` does (the current properties, compaction, a checkpoint,
expired log removed). Then, interleaved, `--rounds` times on each: the open (DeltaTable +
to_pyarrow_dataset, and the drain's own open path: Lake.ensure_table + Lake.table) and a
drain of `--drain-events` new events (its own timer). Medians; writes
bench/results/compaction.json.

Usage: .venv/bin/python -m bench.compaction [--commits 2500] [--rounds 7]
       [--keep-build DIR | --reuse DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import write_results
from smarttrader_cli.config import load_config
from smarttrader_cli.lake.maintenance import apply_properties, compact_table
from smarttrader_cli.lake.properties import TableProperties
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.drain import Drainer, DrainLimits
from smarttrader_cli.stream.local_log import LocalConsumer
from tests.harness import write_config
from tests.stream_support import helius_events, outbound, produce

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "compaction.json"
OLDER_ST = TableProperties(checkpoint_interval=100, log_retention_hours=30 * 24)
MB = 2**20


def lake_of(config: Path, properties: TableProperties | None = None) -> Lake:
    lake = Lake.from_config(load_config(config))
    return lake if properties is None else Lake(lake.root, properties=properties)


def drain(config: Path, lake: Lake, run: str) -> float:
    """One drain of what the stream holds; its own timer, in seconds."""
    stream = load_config(config).config.stream
    meta = CommitMeta(run, "stream.drain", "bench")
    return Drainer(lake, LocalConsumer(stream), stream, meta).run(DrainLimits()).seconds


def log_files(lake: Lake) -> tuple[int, int]:
    """(commit JSON files, checkpoints) in the table's _delta_log."""
    names = os.listdir(Path(lake.uri(WEBHOOK_EVENTS)) / "_delta_log")
    return sum(n.endswith(".json") for n in names), sum(".checkpoint." in n for n in names)


def state(lake: Lake) -> dict[str, Any]:
    dt = lake.table(WEBHOOK_EVENTS)
    json_files, checkpoints = log_files(lake)
    return {
        "version": dt.version(),
        "data_files": len(dt.file_uris()),
        "log_json": json_files,
        "checkpoints": checkpoints,
    }


def open_seconds(lake: Lake) -> tuple[float, float]:
    """(DeltaTable + to_pyarrow_dataset, the drain's ensure_table + table) on a fresh Lake."""
    from deltalake import DeltaTable

    started = time.perf_counter()
    DeltaTable(lake.uri(WEBHOOK_EVENTS)).to_pyarrow_dataset()
    plain = time.perf_counter() - started
    fresh = Lake(lake.root, properties=lake.properties)
    started = time.perf_counter()
    fresh.ensure_table(WEBHOOK_EVENTS)
    fresh.table(WEBHOOK_EVENTS).get_add_actions(flatten=True)
    return plain, time.perf_counter() - started


def build(folder: Path, commits: int, per_commit: int) -> Path:
    """A lake of `commits` drain commits of `per_commit` events each."""
    config = write_config(folder, {"stream.batch_size": per_commit})
    produce(config, outbound(helius_events(commits * per_commit, seed=5)))
    drain(config, lake_of(config, OLDER_ST), "build")
    return config


def copy(config: Path, folder: Path, age_days: float) -> Path:
    """The lake and stream of `config` under `folder` (default batch size), its log aged."""
    target = write_config(folder)
    for part in ("lake", "stream"):
        shutil.copytree(config.parent / part, folder / part)
    then = time.time() - age_days * 86400
    for entry in (folder / "lake" / WEBHOOK_EVENTS.relative_path / "_delta_log").iterdir():
        os.utime(entry, (then, then))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2500)
    parser.add_argument("--per-commit", type=int, default=2)
    parser.add_argument("--age-days", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--drain-events", type=int, default=200)
    parser.add_argument(
        "--reuse", type=Path, help="a folder a run with --keep-build left (skips the build)"
    )
    parser.add_argument("--keep-build", type=Path, help="copy the built lake here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="st-bench-compaction-") as tmp:
        started = time.monotonic()
        built = args.reuse / "smarttrader.yaml" if args.reuse else None
        if built is None:
            built = build(Path(tmp) / "build", args.commits, args.per_commit)
            print(f"built {args.commits} commits in {time.monotonic() - started:.0f} s")
            if args.keep_build:
                shutil.copytree(built.parent, args.keep_build)
        before_cfg = copy(built, Path(tmp) / "before", args.age_days)
        after_cfg = copy(built, Path(tmp) / "after", args.age_days)
        before, after = lake_of(before_cfg, OLDER_ST), lake_of(after_cfg)
        for config, lake in ((before_cfg, before), (after_cfg, after)):
            drain(config, lake, "catch-up")  # what the build left in the stream, if anything
        grown = state(before)
        started = time.monotonic()
        apply_properties(after, WEBHOOK_EVENTS)
        done = compact_table(after, WEBHOOK_EVENTS, 64 * MB, 8)
        compact_s = time.monotonic() - started
        compacted = state(after)

        timings: dict[str, dict[str, list[float]]] = {
            "before": {"open": [], "drain_open": [], "drain": []},
            "after": {"open": [], "drain_open": [], "drain": []},
        }
        for r in range(args.rounds):
            events = outbound(helius_events(args.drain_events, seed=100 + r))
            for name, config, lake in (
                ("before", before_cfg, before),
                ("after", after_cfg, after),
            ):
                plain, drain_open = open_seconds(lake)
                timings[name]["open"].append(plain)
                timings[name]["drain_open"].append(drain_open)
                produce(config, events)
                timings[name]["drain"].append(drain(config, lake, f"r{r}"))
        rows = []
        for name, grown_state in (("before", grown), ("after", compacted)):
            t = timings[name]
            rows.append(
                {
                    "table": name,
                    **grown_state,
                    "open_ms": round(statistics.median(t["open"]) * 1000, 1),
                    "drain_open_ms": round(statistics.median(t["drain_open"]) * 1000, 1),
                    "drain_timer_s": round(statistics.median(t["drain"]), 3),
                }
            )
        ratio = {
            k: round(rows[0][k] / rows[1][k], 1) if rows[1][k] else None
            for k in ("open_ms", "drain_open_ms", "drain_timer_s")
        }
        rows.append({"table": "before/after", **dict.fromkeys(grown, ""), **ratio})
        print(
            f"compaction: {done.files_removed} files into {done.files_added} in "
            f"{compact_s:.2f} s; load average {os.getloadavg()}"
        )
        write_results(RESULTS, list(rows[0]), rows)


if __name__ == "__main__":
    main()
