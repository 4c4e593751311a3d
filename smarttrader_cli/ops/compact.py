"""`st ops compact`: the lake's table properties, then compaction of the tables that
accumulate small files, each followed by a checkpoint and removal of expired log entries.

Safe beside a running drain or stage (stage locks are per stage, so they do run at once):
the rewrite is a dataChange=false commit that removes only files it read, so a
concurrent append (the drain's, with its offsets) commits on top of it untouched, and a
commit that really conflicts (a merge or delete of the same files, another compaction)
fails one side, which retries on fresh state (Lake._retrying_races, the drain's re-seek).
Files the rewrite replaced stay on disk for readers of older snapshots until `st ops
cleanup` vacuums them, `lake.vacuum_retention_hours` later.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import TABLES, table_spec

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.commits import CommitMeta
    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.ops.compact")
MB = 2**20


def run_compaction(
    config: Config, lake: Lake, meta: CommitMeta | None = None
) -> list[dict[str, Any]]:
    """Apply the table properties to every table, compact `ops.compact_tables`; one row
    per table touched."""
    from smarttrader_cli.lake.maintenance import apply_properties, compact_table

    ops = config.ops
    targets = [table_spec(name) for name in ops.compact_tables]
    rows: dict[str, dict[str, Any]] = {}
    for spec in TABLES.values():
        if not lake.exists(spec):
            continue
        changed = apply_properties(lake, spec, meta)
        if changed:
            log.info("%s: set %s", spec.name, ", ".join(f"{k}={v}" for k, v in changed.items()))
        rows[spec.name] = {"table": spec.name, "properties_set": len(changed)}
    for spec in targets:
        if spec.name not in rows:
            continue  # never written: nothing to compact
        done = compact_table(
            lake,
            spec,
            ops.compact_target_file_mb * MB,
            ops.compact_min_files,
            meta,
            open_size=ops.compact_open_file_mb * MB,
        )
        if done.checkpoint is not None:
            log.info(
                "%s: %d small files into %d, checkpoint at version %d",
                spec.name, done.files_removed, done.files_added, done.checkpoint,
            )  # fmt: skip
        rows[spec.name].update(done.row())
    return list(rows.values())
