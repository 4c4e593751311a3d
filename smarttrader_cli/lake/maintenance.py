"""Vacuum, compaction, checkpoints and table properties of lake tables."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import TABLES, TableSpec, table_spec

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.lake.commits import CommitMeta


def _selected(lake: Lake, names: list[str] | None) -> list[TableSpec]:
    specs = [table_spec(n) for n in names] if names else list(TABLES.values())
    return [s for s in specs if lake.exists(s)]


def vacuum_tables(
    lake: Lake, names: list[str] | None, retention_hours: float, dry_run: bool
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


def migrate_tables(
    lake: Lake, names: list[str] | None, state_dir: str | Path, meta: CommitMeta
) -> list[dict[str, Any]]:
    """Bring each table up to the registry: add new columns, backfill them, and rewrite a
    table partitioned otherwise into the registry's partitions (lake/layout.py; under the
    stage locks of its writers, found in `state_dir`).

    Idempotent: a backfill only touches rows where its column is still null (a run
    interrupted between adding a column and filling it is finished here), a table already
    partitioned as the registry says is not rewritten.
    """
    from smarttrader_cli.lake.layout import HOUSEKEEPERS, WRITERS, needs_repartition, repartition

    out = []
    for spec in _selected(lake, names):
        added, filled = lake.evolve(spec)
        filled += sum(lake.backfill(spec, column, value) for column, value in spec.backfill)
        rewritten = 0
        if needs_repartition(lake, spec):
            locks = (*WRITERS.get(spec.name, ()), *HOUSEKEEPERS)
            rewritten = repartition(lake, spec, meta, state_dir, locks)
        out.append(
            {
                "table": spec.name,
                "columns_added": ", ".join(added),
                "rows_backfilled": filled,
                "rows_repartitioned": rewritten,
            }
        )
    return out


def apply_properties(lake: Lake, spec: TableSpec, meta: CommitMeta | None = None) -> dict[str, str]:
    """Give a table the lake's properties it lacks (one commit; none when it has them all);
    returns what was set. A commit lost to a concurrent writer is retried on fresh state."""
    from deltalake import CommitProperties

    props = (
        CommitProperties(custom_metadata=meta.as_metadata(0, "set properties")) if meta else None
    )

    def action(dt: DeltaTable) -> dict[str, str]:
        changes = lake.properties.changes(dt.metadata().configuration, spec.frequent)
        if changes:
            dt.alter.set_table_properties(changes, commit_properties=props)
        return changes

    # Lake._retrying_races is the lake package's one retry loop for commits.
    return lake._retrying_races(spec, "setting properties of", action)


@dataclass
class Compaction:
    """What compacting one table did."""

    table: str
    small_files: int  # files below the target size before
    files_removed: int = 0
    files_added: int = 0
    checkpoint: int | None = None  # the version checkpointed (None: compaction skipped)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def small_files_by_partition(dt: DeltaTable, target_size: int) -> dict[Any, int]:
    """Partition value (None: the null partition) → its files below `target_size` bytes,
    two or more; an unpartitioned table has the one key None, with any count. One
    partition column at most."""
    import pyarrow as pa
    import pyarrow.compute as pc

    actions = pa.table(dt.get_add_actions(flatten=True))
    columns = dt.metadata().partition_columns
    if not actions.num_rows:
        return {}
    small = actions.filter(pc.less(actions.column("size_bytes"), target_size))
    if not columns:
        return {None: small.num_rows} if small.num_rows else {}
    if len(columns) > 1:
        raise ValueError(f"compaction by partition takes one partition column, not {columns}")
    counts = small.group_by(f"partition.{columns[0]}").aggregate([("size_bytes", "count")])
    return {
        value: count
        for value, count in zip(
            counts.column(0).to_pylist(), counts.column(1).to_pylist(), strict=True
        )
        if count >= 2  # one file alone is as compact as it gets
    }


def newest_partition(dt: DeltaTable) -> Any:
    """The greatest value of the table's one partition column (None: not partitioned, or
    only the null partition): the day still being written, in a table partitioned by day."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = dt.metadata().partition_columns
    if len(columns) != 1:
        return None
    actions = pa.table(dt.get_add_actions(flatten=True))
    if not actions.num_rows:
        return None
    return pc.max(actions.column(f"partition.{columns[0]}")).as_py()


def compact_table(
    lake: Lake,
    spec: TableSpec,
    target_size: int,
    min_files: int,
    meta: CommitMeta | None = None,
    open_size: int | None = None,
) -> Compaction:
    """Rewrite a table's small files into files of about `target_size` bytes when it has at
    least `min_files` of them, then checkpoint it and remove its expired log entries. A
    partitioned table is compacted in the partitions holding two or more small files only
    (today's, mostly): the other partitions are not read.

    With `open_size`, the newest partition (the day still being written) is compacted into
    files of about `open_size` bytes instead: a file of that size is not read again, so a
    compaction rewrites at most about `open_size` of the day plus its new files, not the
    whole day so far; the day is folded into `target_size` files once it is no longer the
    newest. (A null partition with small files is compacted with the others at
    `target_size`: delta-rs takes no filter for it, so the newest is then folded too.)

    The rewrite commits with dataChange=false on every file it adds and removes, and it
    keeps the table's application transactions (the stream offsets): checkpoints carry
    them, so removing the log entries that first recorded them loses none.
    """
    with lake.latest(spec) as dt:
        by_partition = small_files_by_partition(dt, target_size)
        newest = newest_partition(dt) if open_size and open_size < target_size else None
        opened = 0
        if newest is not None and None not in by_partition:
            by_partition.pop(newest, None)
            opened = small_files_by_partition(dt, open_size or target_size).get(newest, 0)
        columns = dt.metadata().partition_columns
    done = Compaction(spec.name, sum(by_partition.values()) + opened)
    if done.small_files < min_files:
        return done
    passes: list[tuple[int, list[tuple[str, str, Any]] | None]] = []
    if by_partition:
        filters = None
        if columns and None not in by_partition:
            # (delta-rs takes no filter for the null partition; without one it compacts the
            # same partitions: it leaves a partition of one small file as it is)
            filters = [(columns[0], "in", [str(value) for value in sorted(by_partition)])]
        passes.append((target_size, filters))
    if opened:
        passes.append((open_size or target_size, [(columns[0], "=", str(newest))]))
    for size, filters in passes:
        metrics = lake.optimize(spec, size, meta, filters)
        done.files_removed += int(metrics.get("numFilesRemoved", 0))
        done.files_added += int(metrics.get("numFilesAdded", 0))
    done.checkpoint = checkpoint(lake, spec)
    return done


def checkpoint(lake: Lake, spec: TableSpec) -> int:
    """Checkpoint the table at its latest version and remove the log entries older than
    its delta.logRetentionDuration that the checkpoint covers; returns that version."""
    from smarttrader_cli.errors import LakeError
    from smarttrader_cli.lake.object_store import describe_error

    with lake.latest(spec) as dt:
        try:
            dt.create_checkpoint()
            dt.cleanup_metadata()
        except Exception as exc:
            raise LakeError(f"checkpoint of {spec.name} failed: {describe_error(exc)}") from exc
        return dt.version()
