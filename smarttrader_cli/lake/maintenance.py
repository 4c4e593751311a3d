"""Vacuum and compaction of lake tables."""

from __future__ import annotations

from typing import Any

from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import TABLES, TableSpec, table_spec


def _selected(lake: Lake, names: list[str] | None) -> list[TableSpec]:
    specs = [table_spec(n) for n in names] if names else list(TABLES.values())
    return [s for s in specs if lake.exists(s)]


def vacuum_tables(
    lake: Lake, names: list[str] | None, retention_hours: int, dry_run: bool
) -> list[dict[str, Any]]:
    """Vacuum each table; rows say how many files went (or would go)."""
    out = []
    for spec in _selected(lake, names):
        files = lake.vacuum(spec, retention_hours, dry_run)
        out.append({"table": spec.name, "files": len(files), "dry_run": dry_run})
    return out


def optimize_tables(lake: Lake, names: list[str] | None) -> list[dict[str, Any]]:
    """Compact each table's small files."""
    out = []
    for spec in _selected(lake, names):
        metrics = lake.optimize(spec)
        out.append(
            {
                "table": spec.name,
                "files_added": metrics.get("numFilesAdded"),
                "files_removed": metrics.get("numFilesRemoved"),
            }
        )
    return out


def migrate_tables(lake: Lake, names: list[str] | None) -> list[dict[str, Any]]:
    """Bring each table's schema up to the registry's: add new columns, backfill them.

    Idempotent: a backfill only touches rows where its column is still null (a run
    interrupted between adding a column and filling it is finished here).
    """
    out = []
    for spec in _selected(lake, names):
        added, filled = lake.evolve(spec)
        filled += sum(lake.backfill(spec, column, value) for column, value in spec.backfill)
        out.append(
            {"table": spec.name, "columns_added": ", ".join(added), "rows_backfilled": filled}
        )
    return out
