"""Local log seek benchmark: what finding a stored offset costs as the log grows (issue 16).

For each size, fills one local stream log (one partition, the default 64 MiB segments)
with N simulated Helius events (about 4 KB each, bench/drain.py's), then
times (in a fresh process per round, each number the median of 3 calls after one call
that pays for imports; the median over `--repeat` rounds):

- seek_end_ms: a reader's seek to the log's end, where a caught-up `st stream drain`
  resumes (the newest segment: before the index, read from its first record);
- seek_sealed_ms: a seek to the last record of the newest full (sealed) segment, the
  longest read through a segment without an index;
- end_offset_ms: the high watermark, which every drain reads for its bounds check;
- drain_open_ms: what a drain with nothing to do pays in the log (start at the end,
  bounds, lag).

The receiver's append path is measured in a fresh log (`--sizes` with no sizes: only it):
`LocalProducer.publish` of one event per call (fsynced per call, as one connection gets
it; wall time), and `SegmentWriter.append` of one record without fsync per CPU second,
both writers in one process (where writing the index would show).

With `--base TREE` (another checkout, e.g. `git worktree add /tmp/base main`) every
measurement also runs with that tree's code, alternating with this one's on the same log
files, and the two are printed side by side with how many times faster this tree is
(`_x`, above 1: faster). The worker runs this file
with PYTHONPATH set to the tree, so it imports nothing from bench/.

Usage: .venv/bin/python -m bench.log_seek [--sizes 70000 700000] [--repeat 5]
       [--base /tmp/base] [--appends 3000]
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

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "log_seek.json"
TOPIC = "bench"
LABELS = ("what", "segments", "newest_mb", "load_avg_1m")


def _config(local_dir: Path, segment_bytes: int = 64 << 20) -> Any:
    from smarttrader_cli.config.schema import StreamConfig

    return StreamConfig(
        local_dir=str(local_dir), topic=TOPIC, partitions=1, segment_bytes=segment_bytes
    )


def fill(local_dir: Path, count: int) -> None:
    """`count` simulated events into a one-partition local log (this tree's writer)."""
    from smarttrader_cli.sim.market import Market, SimSettings
    from smarttrader_cli.sim.webhooks import enhanced_swaps
    from smarttrader_cli.stream.backend import OutboundEvent
    from smarttrader_cli.stream.local_log import LocalProducer

    templates = enhanced_swaps(Market(SimSettings(seed=11)), 2000, start_time=1_760_000_000)
    producer = LocalProducer(_config(local_dir))
    now = int(time.time() * 1e6)
    chunk: list[OutboundEvent] = []
    for i in range(count):
        event = dict(templates[i % len(templates)])
        event["signature"] = f"{i:012d}{event['signature'][12:]}"
        chunk.append(OutboundEvent(event["signature"].encode(), orjson.dumps(event), now))
        if len(chunk) == 10_000 or i == count - 1:
            producer.publish(chunk, timeout=30)
            chunk = []
    producer.close()


def _ms(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure_seek(local_dir: Path) -> dict[str, float]:
    """One round of the seek timings on an existing log (the worker's job)."""
    from smarttrader_cli.stream.local_log import LocalConsumer
    from smarttrader_cli.stream.segments import SegmentReader, end_offset, list_segments

    directory = local_dir / TOPIC / "p0"
    end = end_offset(directory)
    bases = list_segments(directory)
    sealed_last = bases[-1] - 1 if len(bases) > 1 else end - 1

    def seek(offset: int) -> None:
        reader = SegmentReader(directory)
        reader.seek(offset)
        assert reader.position == offset, (reader.position, offset)
        reader.close()

    def drain_open() -> None:
        consumer = LocalConsumer(_config(local_dir))
        consumer.start(lambda parts: dict.fromkeys(parts, end))
        consumer.bounds(consumer.partitions())
        assert consumer.lag() == {0: 0}
        consumer.close()

    timed = {
        "seek_end_ms": lambda: seek(end),
        "seek_sealed_ms": lambda: seek(sealed_last),
        "end_offset_ms": lambda: end_offset(directory),
        "drain_open_ms": drain_open,
    }
    for fn in timed.values():
        fn()  # first calls pay for imports and fresh buffers: not what is measured
    return {name: statistics.median(_ms(fn) for _ in range(3)) for name, fn in timed.items()}


VALUE = b'{"signature":"x","type":"SWAP","description":"' + b"y" * 1400 + b'"}'


def measure_publish(scratch: Path, appends: int) -> dict[str, float]:
    """Fsynced one-event publishes per second in a fresh log (the worker's job)."""
    from smarttrader_cli.stream.backend import OutboundEvent
    from smarttrader_cli.stream.local_log import LocalProducer

    producer = LocalProducer(_config(scratch))
    started = time.perf_counter()
    for i in range(appends):
        producer.publish([OutboundEvent(b"k%d" % i, VALUE, 1)], timeout=30)
    rate = appends / (time.perf_counter() - started)
    producer.close()
    return {"publish_fsync_per_s": rate}


def append_cpu(base: Path | None, scratch: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Unsynced one-record appends per CPU second, this tree's writer and the base's in one
    process, alternating (so the machine's load falls on both alike): the index's own cost.
    The base's segments.py is loaded by path beside this tree's frames.py."""
    import importlib.util

    from smarttrader_cli.stream import segments
    from smarttrader_cli.stream.backend import OutboundEvent
    from smarttrader_cli.stream.local_log import encode

    writers: dict[str, Any] = {"new": segments}
    if base is not None:
        spec = importlib.util.spec_from_file_location(
            "base_segments", base / "smarttrader_cli" / "stream" / "segments.py"
        )
        assert spec is not None and spec.loader is not None
        writers["base"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(writers["base"])
    body = encode(OutboundEvent(b"k", VALUE, 1))
    rates: dict[str, list[float]] = {name: [] for name in writers}
    for i in range(rounds * 2):
        for name in sorted(writers, reverse=bool(i % 2)):
            writer = writers[name].SegmentWriter(scratch / f"{name}-{i}", 64 << 20)
            started = time.process_time()
            for _ in range(30_000):
                writer.append([body], sync=False)
            rates[name].append(30_000 / (time.process_time() - started))
            writer.close()
    return {name: {"append_nosync_cpu_per_s": statistics.median(r)} for name, r in rates.items()}


def _worker(tree: Path, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        env=env,
        check=True,
        capture_output=True,
        cwd=tree,
    ).stdout
    return dict(orjson.loads(out))


def _rounds(trees: dict[str, Path], repeat: int, *args: str) -> dict[str, dict[str, float]]:
    """Alternate the trees `repeat` times; the median of each number per tree."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for i in range(repeat):
        for name in sorted(trees, reverse=bool(i % 2)):  # ABBA: a trend hits both
            runs[name].append(_worker(trees[name], *args))
    return {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }


def _side_by_side(row: dict[str, Any], got: dict[str, dict[str, float]]) -> None:
    """This tree's numbers, the base's, and how many times faster this tree is."""
    for key, value in got["new"].items():
        row[key] = round(value, 1)
        if "base" in got:
            base = got["base"][key]
            row[f"{key}_base"] = round(base, 1)
            faster = value / base if key.endswith("_per_s") else base / value
            row[f"{key}_x"] = round(faster, 2 if key.endswith("_per_s") else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[70_000, 700_000])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per tree (median)")
    parser.add_argument("--base", type=Path, help="another checkout to compare with")
    parser.add_argument("--appends", type=int, default=3000, help="fsynced publishes per round")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, path, *rest = args.worker
        if kind == "seek":
            result = measure_seek(Path(path))
        else:
            result = measure_publish(Path(path), int(rest[0]))
        sys.stdout.buffer.write(orjson.dumps(result))
        return
    from bench.report import write_results

    trees = {"new": ROOT, **({"base": args.base.resolve()} if args.base else {})}
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix="st-bench-seek-") as tmp:
            fill(Path(tmp), n)
            files = sorted((Path(tmp) / TOPIC / "p0").glob("*.seg"))
            row: dict[str, Any] = {"what": f"{n:,} records", "segments": len(files)}
            row["newest_mb"] = round(files[-1].stat().st_size / 2**20)
            _side_by_side(row, _rounds(trees, args.repeat, "seek", tmp))
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(row, flush=True)
    with tempfile.TemporaryDirectory(prefix="st-bench-append-") as tmp:
        got: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.repeat):
            for name in sorted(trees, reverse=bool(i % 2)):  # ABBA: a trend hits both
                scratch = Path(tmp) / f"{name}-{i}"
                got[name].append(_worker(trees[name], "publish", str(scratch), str(args.appends)))
        medians = {
            name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            for name, rs in got.items()
        }
        cpu = append_cpu(args.base and args.base.resolve(), Path(tmp) / "cpu", args.repeat)
        for name in medians:
            medians[name].update(cpu[name])
        row = {"what": "receiver append", "segments": None, "newest_mb": None}
        _side_by_side(row, medians)
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(row, flush=True)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys and k not in LABELS]
    for row in rows:
        for k in keys:
            row.setdefault(k, "")
    write_results(RESULTS, ["what", "segments", "newest_mb", *keys, "load_avg_1m"], rows)


if __name__ == "__main__":
    main()
