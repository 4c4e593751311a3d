"""A command that exits right after (or while) reading a table ends with its own exit code.

Arrow finishes tearing down a dataset scan on its thread pool after `to_table()` has
returned (and at once when a scan is abandoned midway). When the scan read through
deltalake's Python filesystem, that teardown freed Python buffers and needed the GIL; if
the process was already finalizing, CPython 3.11 ended the worker thread inside a C++
destructor: SIGABRT (134 in a shell, -6 here) in a few to a third of `st runs show
<unknown id>` runs, and after an abandoned scan also segfaults and hangs at exit.
`Lake.table()` now hands out tables whose scans read through a native Arrow filesystem
(smarttrader_cli/lake/scan.py), so no Arrow thread needs the GIL once a read returns.

Each check runs many short processes: the `st` commands a few at a time, the bare reads one
at a time (the race needs the Arrow worker and the main thread on two free cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pa_fs
import pytest

from smarttrader_cli.errors import EXIT_OK, EXIT_USAGE
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import RUNS
from smarttrader_cli.ops.ledger import SUCCEEDED, Ledger, RunRecord
from tests.harness import S3Server, write_config

ST = str(Path(sys.executable).with_name("st"))
PARALLEL = 4
HUNG = "hung"

# Read ops.runs through the Lake (all of it, or one batch of an abandoned scan) and exit
# with 2, as `st runs show <unknown id>` does. In between, `sum(range(...))` holds the GIL
# in C for some ms without handing it over: an Arrow worker that still needs the GIL then
# still waits for it when finalization starts, which is when CPython 3.11 ends it. This
# turns a race lost in a few % of runs into one lost in most.
READ_THEN_EXIT = """\
import json, sys
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import RUNS
root, options, mode = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
lake = Lake(root, options)
if mode == "read":
    lake.read(RUNS)
else:
    batches = lake.table(RUNS).to_pyarrow_dataset().to_batches()
    next(batches)  # the scan is under way, the next files are being read ahead
    del batches  # abandoned, as an error raised mid-scan abandons it
sum(range(2_000_000))
raise SystemExit(2)
"""


def write_runs(lake: Lake, count: int = 8) -> list[str]:
    """`count` runs in ops.runs, one commit (and one data file) each; returns their ids."""
    ledger = Ledger(lake)
    start = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    ids = []
    for i in range(count):
        started = start + timedelta(minutes=i)
        record = RunRecord(f"run-{i}", "bronze.tokens", SUCCEEDED, started, "hash", {"i": i})
        record.ended_at = started + timedelta(seconds=3)
        ledger.record(record)
        ids.append(record.run_id)
    return ids


def run_many(
    commands: list[list[str]], env: dict[str, str], cwd: Path, parallel: int = PARALLEL
) -> list[tuple[int | str, str]]:
    """(exit code or HUNG, stderr) of each command."""

    def one(cmd: list[str]) -> tuple[int | str, str]:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=30)
        except subprocess.TimeoutExpired as exc:
            return HUNG, str(exc.stderr or "")
        return done.returncode, done.stderr

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, commands))


def assert_all_exit(results: list[tuple[int | str, str]], expected: int) -> None:
    codes = Counter(code for code, _ in results)
    other = [stderr for code, stderr in results if code != expected]
    detail = other[0][-1500:] if other else ""
    assert codes == {expected: len(results)}, f"exit codes {dict(codes)}; first other:\n{detail}"


def read_then_exit(root: str, options: dict[str, str], mode: str) -> list[str]:
    return [sys.executable, "-c", READ_THEN_EXIT, root, json.dumps(options), mode]


def st_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_") or k == "ST_CACHE_DIR"}
    env["ST_CONFIG"] = str(config)
    return env


@pytest.fixture
def local_lake(tmp_path: Path) -> tuple[Path, list[str]]:
    """A config whose local lake holds a few runs, and their ids."""
    config = write_config(tmp_path, {"memory.min_free_mb": 64})
    return config, write_runs(Lake(str(tmp_path / "lake")))


def test_lake_tables_scan_through_a_native_filesystem(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    write_runs(lake, 2)
    dataset = lake.table(RUNS).to_pyarrow_dataset()
    assert not isinstance(dataset.filesystem, pa_fs.PyFileSystem)
    assert sorted(lake.read(RUNS).column("run_id").to_pylist()) == ["run-0", "run-1"]


def test_exit_after_or_during_a_read_keeps_its_exit_code(
    local_lake: tuple[Path, list[str]],
) -> None:
    root = str(local_lake[0].parent / "lake")
    commands = [read_then_exit(root, {}, "read")] * 8 + [read_then_exit(root, {}, "scan")] * 6
    assert_all_exit(run_many(commands, dict(os.environ), local_lake[0].parent, parallel=1), 2)


def test_runs_show_unknown_id_exits_2_every_time(local_lake: tuple[Path, list[str]]) -> None:
    config, _ = local_lake
    results = run_many([[ST, "runs", "show", "no-such-run"]] * 8, st_env(config), config.parent)
    assert_all_exit(results, EXIT_USAGE)
    assert all("no run 'no-such-run' in ops.runs" in stderr for _, stderr in results)


def test_commands_that_read_tables_exit_0_every_time(local_lake: tuple[Path, list[str]]) -> None:
    config, ids = local_lake
    commands = [
        [ST, "runs", "list"],
        [ST, "runs", "show", ids[3]],
        [ST, "lake", "show", "ops.runs"],
        [ST, "lake", "tables"],
        [ST, "lake", "history", "ops.runs"],
        [ST, "lake", "query", "select count(*) as n from ops.runs"],
    ]
    assert_all_exit(run_many(commands, st_env(config), config.parent), EXIT_OK)


def test_exit_after_or_during_an_s3_read_keeps_its_exit_code(
    tmp_path: Path, s3_server: S3Server
) -> None:
    root = f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:10]}/lake"
    options = s3_server.storage_options() | {"AWS_CONDITIONAL_PUT": "etag"}
    write_runs(Lake(root, options), 6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    commands = [read_then_exit(root, options, "read")] * 4
    commands += [read_then_exit(root, options, "scan")] * 6
    assert_all_exit(run_many(commands, env, tmp_path, parallel=1), 2)
