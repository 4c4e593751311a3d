"""The run ledger, `ops.runs`: one row per stage run, kept in the lake itself.

A run's row is written once, at its end, as a blind append: no merge, nothing of the
table read. While it runs, its pending row is in its stage's journal in
runtime.state_dir (ops/journal.py), and readers show it from there. Appends can give
one run two rows (its outcome appended by the next run of the stage after a crash, and
by the run itself if it was not dead after all, or had appended but not yet cleared its
journal); readers keep one per run by `preference`.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from smarttrader_cli.errors import LakeError
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import RUNS

if TYPE_CHECKING:
    from deltalake import DeltaTable

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
# Every stage appends here, so scheduled stages starting together race on it most: each
# append retries lost races itself (lake.commit_retries), and is retried this often more.
APPEND_ATTEMPTS = 4
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class RunRecord:
    """A ledger row."""

    run_id: str
    stage: str
    status: str
    started_at: datetime
    config_hash: str
    args: dict[str, Any]
    ended_at: datetime | None = None
    rows_in: int = 0
    rows_out: int = 0
    error: str | None = None
    api_requests: int | None = None  # HTTP requests the stage made (None: it calls no API)
    api_retries: int | None = None
    api_rate_limited: int | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def to_row(self) -> dict[str, Any]:
        duration = (self.ended_at - self.started_at).total_seconds() if self.ended_at else None
        return {
            "run_id": self.run_id,
            "stage": self.stage,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_seconds": duration,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "error": self.error,
            "config_hash": self.config_hash,
            "args": json.dumps(self.args, default=str, sort_keys=True),
            "host": self.host,
            "pid": self.pid,
            "api_requests": self.api_requests,
            "api_retries": self.api_retries,
            "api_rate_limited": self.api_rate_limited,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        """The record a `to_row` dict (a journal, say) was made from."""
        return cls(
            run_id=row["run_id"],
            stage=row["stage"],
            status=row["status"],
            started_at=row["started_at"],
            config_hash=row.get("config_hash") or "",
            args=json.loads(row.get("args") or "{}"),
            ended_at=row.get("ended_at"),
            rows_in=row.get("rows_in") or 0,
            rows_out=row.get("rows_out") or 0,
            error=row.get("error"),
            api_requests=row.get("api_requests"),
            api_retries=row.get("api_retries"),
            api_rate_limited=row.get("api_rate_limited"),
            host=row.get("host") or "",
            pid=row.get("pid") or 0,
        )


def ended_unrecorded(row: dict[str, Any], noticed_by: str | None = None) -> RunRecord:
    """A journaled run as the ledger records it once its process is gone.

    A run that had already written its outcome to the journal keeps that outcome; one
    still `running` failed, at a time nobody knows (ended_at stays null).
    """
    record = RunRecord.from_row(row)
    if record.status == RUNNING:
        record.status = FAILED
        record.ended_at = None
        record.error = f"process {record.pid} on {record.host} ended without recording its outcome"
        if noticed_by:
            record.error += f" (found by run {noticed_by})"
    return record


def preference(row: dict[str, Any]) -> tuple[bool, bool, datetime, str]:
    """How a run's rows rank; readers keep the highest.

    A final status beats `running`, a known end beats an unknown one (the row the run
    wrote itself beats one recorded for it after a crash), then the latest end; the
    error text only makes the choice between otherwise equal rows deterministic.
    """
    ended = row.get("ended_at")
    return (
        row.get("status") != RUNNING,
        ended is not None,
        ended or _EARLIEST,
        row.get("error") or "",
    )


def one_per_run(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run's preferred row, newest start first."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = best.get(row["run_id"])
        if held is None or preference(row) > preference(held):
            best[row["run_id"]] = row
    return sorted(best.values(), key=lambda r: r["started_at"] or _EARLIEST, reverse=True)


class Ledger:
    """Writes and reads `ops.runs`, plus the runs in progress journaled under `state_dir`."""

    def __init__(self, lake: Lake, state_dir: str | Path | None = None) -> None:
        self.lake = lake
        self.state_dir = state_dir

    def record(self, record: RunRecord) -> None:
        """Append the run's row (one small commit, which reads nothing of the table)."""
        meta = CommitMeta(record.run_id, "ops.ledger", record.config_hash)
        table = pa.Table.from_pylist([record.to_row()], schema=RUNS.schema)
        from deltalake.exceptions import CommitFailedError

        self.lake.ensure_table(RUNS)
        # Blind appends never conflict with each other: deltalake retries a lost race at
        # the next version, reading only the commits that won it.
        for attempt in range(APPEND_ATTEMPTS):
            try:
                self.lake.append(RUNS, table, meta, snapshot=self.lake.table(RUNS))
                return
            except LakeError as exc:
                if attempt + 1 == APPEND_ATTEMPTS or not isinstance(
                    exc.__cause__, CommitFailedError
                ):
                    raise
                time.sleep(random.uniform(0.0, 0.2 * 2**attempt))

    def runs(self, limit: int = 50, stage: str | None = None) -> list[dict[str, Any]]:
        """Most recent runs first, those in progress included."""
        rows = self._newest(limit, stage) + self.in_progress(stage)
        return one_per_run(rows)[:limit]

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run's row, from the ledger or (while it runs) its journal."""
        import pyarrow.dataset as ds

        rows = []
        if self.lake.exists(RUNS):
            dataset = self.lake.table(RUNS).to_pyarrow_dataset()
            rows = dataset.to_table(filter=ds.field("run_id") == run_id).to_pylist()
        rows += [r for r in self.in_progress() if r["run_id"] == run_id]
        found = one_per_run(rows)
        return found[0] if found else None

    def in_progress(self, stage: str | None = None) -> list[dict[str, Any]]:
        """Journaled runs not in the ledger yet: `running`, or failed if their process is gone."""
        from smarttrader_cli.ops.journal import holder_gone, journals

        if self.state_dir is None:
            return []
        rows = []
        for row in journals(self.state_dir):
            if stage and row.get("stage") != stage:
                continue
            if holder_gone(row):
                row = ended_unrecorded(row).to_row()
            rows.append(row)
        return rows

    def expire(self, retention_days: int, *, dry_run: bool, now: datetime | None = None) -> int:
        """Delete the rows of runs started more than `retention_days` ago; returns how many."""
        import pyarrow.dataset as ds

        if not self.lake.exists(RUNS):
            return 0
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        old = ds.field("started_at") < pa.scalar(cutoff, RUNS.schema.field("started_at").type)
        count = self.lake.table(RUNS).to_pyarrow_dataset().count_rows(filter=old)
        if count and not dry_run:
            meta = CommitMeta("", "ops.ledger", "", {"retention_days": retention_days})
            count = self.lake.delete(RUNS, f"started_at < '{cutoff.isoformat()}'", meta)
        return count

    def compact(self, min_files: int, *, dry_run: bool) -> int:
        """Rewrite the ledger's small files into one when it has `min_files` or more; returns
        the files compacted (or that would be)."""
        if not self.lake.exists(RUNS):
            return 0
        files = len(self.lake.table(RUNS).file_uris())
        if files < min_files:
            return 0
        if dry_run:
            return files
        return int(self.lake.optimize(RUNS).get("numFilesRemoved", 0))

    def _newest(self, limit: int, stage: str | None) -> list[dict[str, Any]]:
        """The ledger's `limit` newest runs (one row each), reading only the newest files.

        The add actions' statistics say which files hold the newest starts; a filter on
        `started_at` then skips every other file without opening it. When the guess
        yields too few runs (another stage's rows, duplicates), it is widened.
        """
        import pyarrow.dataset as ds

        if not self.lake.exists(RUNS):
            return []
        dt = self.lake.table(RUNS)
        files = _file_starts(dt, stage)
        started = RUNS.schema.field("started_at").type
        wanted = max(limit, 1)
        while True:
            cutoff = _start_cutoff(files, wanted)
            where = ds.field("stage") == stage if stage else None
            pruning = None
            if cutoff is not None:
                since = ds.field("started_at") >= pa.scalar(cutoff, started)
                where = since if where is None else where & since
                # Files left out here are never made into fragments (at 100,000 files the
                # dataset of every file alone takes seconds).
                pruning = f"started_at >= '{cutoff.isoformat()}'"
            dataset = dt.to_pyarrow_dataset(file_pruning_predicate=pruning)
            rows = one_per_run(dataset.to_table(filter=where).to_pylist())
            if len(rows) >= limit or cutoff is None:
                return rows[:limit]
            wanted *= 4


def _file_starts(dt: DeltaTable, stage: str | None) -> list[tuple[int, datetime, datetime]] | None:
    """(rows, newest start, oldest start) of each file that may hold runs of `stage`, newest
    first, from the Delta log's statistics; None when some file has none."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    names = ["num_records", "max.started_at", "min.started_at", "min.stage", "max.stage"]
    if not set(names) <= set(actions.column_names):
        return None
    files = []
    for rows, newest, oldest, low, high in zip(
        *(actions.column(n).to_pylist() for n in names), strict=True
    ):
        if rows is None or newest is None or oldest is None:
            return None
        if stage and low is not None and high is not None and not low <= stage <= high:
            continue
        files.append((rows, _as_utc(newest), _as_utc(oldest)))
    files.sort(key=lambda f: f[1], reverse=True)
    return files


def _start_cutoff(
    files: list[tuple[int, datetime, datetime]] | None, wanted: int
) -> datetime | None:
    """A start time after which the files likely hold `wanted` rows; None when that takes
    all of them (or their statistics are missing).

    Files are taken newest first; within the file that crosses `wanted`, starts are
    assumed spread evenly between its oldest and newest.
    """
    have = 0
    for rows, newest, oldest in files or []:
        if have + rows >= wanted:
            return newest - (newest - oldest) * ((wanted - have) / rows)
        have += rows
    return None


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
