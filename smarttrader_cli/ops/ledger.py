"""The run ledger, `ops.runs`: one row per stage run, kept in the lake itself."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import RUNS

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


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
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "api_requests": self.api_requests,
            "api_retries": self.api_retries,
            "api_rate_limited": self.api_rate_limited,
        }


class Ledger:
    """Writes and reads `ops.runs`."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def record(self, record: RunRecord) -> None:
        """Insert or update the run's row (one small commit)."""
        meta = CommitMeta(record.run_id, "ops.ledger", record.config_hash)
        table = pa.Table.from_pylist([record.to_row()], schema=RUNS.schema)
        # Every stage writes here twice, so scheduled stages race on it most: retry longer.
        self.lake.merge(RUNS, table, meta, retries=max(30, self.lake.commit_retries))

    def runs(self, limit: int = 50, stage: str | None = None) -> list[dict[str, Any]]:
        """Most recent runs first."""
        table = self.lake.read(RUNS)
        rows = table.to_pylist()
        if stage:
            rows = [r for r in rows if r["stage"] == stage]
        rows.sort(key=lambda r: r["started_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
        return rows[:limit]

    def get(self, run_id: str) -> dict[str, Any] | None:
        import pyarrow.compute as pc

        table = self.lake.read(RUNS)
        found = table.filter(pc.equal(table.column("run_id"), run_id)).to_pylist()
        return found[0] if found else None
