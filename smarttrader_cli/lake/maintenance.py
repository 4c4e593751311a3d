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
