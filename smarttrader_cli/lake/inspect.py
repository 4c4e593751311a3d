"""Read-side lake operations behind `st lake`: listing, history, time travel, upkeep."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smarttrader_cli.errors import TableNotFoundError
from smarttrader_cli.lake.readers import not_written
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import TABLES, TableSpec


def table_summaries(lake: Lake) -> list[dict[str, Any]]:
    """Name, version, rows, size and last commit of every registered table."""
    rows = []
    for spec in TABLES.values():
        row: dict[str, Any] = {"table": spec.name, "version": None, "rows": None, "files": None}
        row.update({"size_mb": None, "last_commit": None, "last_operation": None})
        if lake.exists(spec):
            dt = lake.table(spec)
            actions = dt.get_add_actions(flatten=True)
            sizes = _column(actions, "size_bytes")
            counts = _column(actions, "num_records")
            last = dt.history(1)[0]
            row.update(
                version=dt.version(),
                rows=int(sum(c or 0 for c in counts)),
                files=actions.num_rows,
                size_mb=round(sum(sizes) / 1e6, 3),
                last_commit=_ms_to_dt(last.get("timestamp")),
                last_operation=last.get("operation"),
            )
        rows.append(row)
    return rows


def table_history(lake: Lake, spec: TableSpec, limit: int | None = None) -> list[dict[str, Any]]:
    """Commits of a table, newest first, with the metadata `st` records."""
    out = []
    for entry in lake.history(spec, limit):
        metrics = entry.get("operationMetrics") or {}
        out.append(
            {
                "version": entry.get("version"),
                "timestamp": _ms_to_dt(entry.get("timestamp")),
                "operation": entry.get("operation"),
                "stage": entry.get("stage"),
                "run_id": entry.get("run_id"),
                "rows": entry.get("rows"),
                "inserted": metrics.get("num_target_rows_inserted", metrics.get("num_added_rows")),
                "updated": metrics.get("num_target_rows_updated"),
                "config_hash": entry.get("config_hash"),
            }
        )
    return out


def show_rows(
    lake: Lake,
    spec: TableSpec,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Rows of a table, now or at a version/time."""
    if not lake.exists(spec):
        raise TableNotFoundError(not_written(spec))
    table = lake.read(spec, version=version, as_of=as_of)
    return table.slice(0, limit).to_pylist()


def _column(actions: Any, name: str) -> list[Any]:
    return list(actions.column(name).to_pylist()) if actions.num_rows else []


def _ms_to_dt(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None
