"""A table's partitioning: bringing a table written before its registry's layout to it.

Delta cannot change a table's partition columns in place, so a table whose partitioning
differs from the registry's is rewritten once: its rows, read from one snapshot, written
into the new layout in one overwrite commit that also sets the new partitioning. The
commit is atomic: a crash before it leaves the old table as it was (the files written so
far are unreferenced until `st ops cleanup` vacuums them) and the next attempt starts
over. The table keeps its id and its application transactions (the readers' cursors, the
stream offsets), which live in the log, not in the files.

delta-rs does not check a schema-overwriting commit against the commits made after the
snapshot it read: one landing in between (a merge, a compaction) would be undone or leave
its files without partition values. So the rewrite runs holding the stage locks of every
writer of the table, and a run that cannot take them leaves the table as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from smarttrader_cli.errors import LakeError, LockHeldError

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

    from smarttrader_cli.lake.commits import CommitMeta
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.lake.tables import TableSpec

log = logging.getLogger("st.lake.layout")

# The stages that commit to a partitioned table: its writers, and compaction.
WRITERS: dict[str, tuple[str, ...]] = {
    "bronze.webhook_events": ("stream.drain",),
    "silver.webhook_swaps": ("silver.webhooks",),
}
HOUSEKEEPERS = ("ops.compact",)


def partitioned_as(dt: DeltaTable) -> tuple[str, ...]:
    return tuple(dt.metadata().partition_columns)


def needs_repartition(lake: Lake, spec: TableSpec) -> bool:
    """Whether the table exists with another partitioning than the registry's."""
    if not lake.exists(spec):
        return False
    with lake.latest(spec) as table:
        return partitioned_as(table) != spec.partition_by


def repartition(
    lake: Lake,
    spec: TableSpec,
    meta: CommitMeta,
    state_dir: str | Path,
    locks: tuple[str, ...],
) -> int:
    """Rewrite the table into the registry's partitioning in one commit, holding the
    stage locks `locks` (LockHeldError when one is taken); returns the rows rewritten
    (0: the table already has it)."""
    from smarttrader_cli.ops.locks import stage_lock

    with ExitStack() as held:
        for stage in locks:
            held.enter_context(stage_lock(state_dir, stage, meta.run_id))
        return _rewrite(lake, spec, meta)


def repartition_from_writer(
    lake: Lake, spec: TableSpec, meta: CommitMeta, state_dir: str | Path
) -> None:
    """What a writer's run does first: rewrite its table into the registry's partitioning
    if it has another, once, holding compaction's lock beside the writer's own (the run
    holds that already). While `st ops compact` runs, the table keeps its layout until the
    next run (logged)."""
    if not needs_repartition(lake, spec):
        return
    try:
        repartition(lake, spec, meta, state_dir, HOUSEKEEPERS)
    except LockHeldError as exc:
        log.warning("%s keeps its old layout this run: %s", spec.name, exc)


def _rewrite(lake: Lake, spec: TableSpec, meta: CommitMeta) -> int:
    from deltalake import CommitProperties, write_deltalake

    from smarttrader_cli.lake.object_store import describe_error

    lake.ensure_table(spec)  # the registry's columns first: the rewrite keeps them all
    dt = lake.table(spec)
    before = partitioned_as(dt)
    if before == spec.partition_by:
        return 0
    rows = dt.to_pyarrow_dataset().count_rows()
    log.warning(
        "%s: rewriting %d rows at version %d from partitions %s into %s (once)",
        spec.name, rows, dt.version(), list(before), list(spec.partition_by),
    )  # fmt: skip
    props = CommitProperties(
        custom_metadata={
            **meta.as_metadata(rows, "repartition"),
            "partition_by": ",".join(spec.partition_by),
        },
    )
    try:
        write_deltalake(
            dt,  # the snapshot read: the commit is made on top of it
            _conformed(lake, spec, dt),
            mode="overwrite",
            schema_mode="overwrite",
            partition_by=list(spec.partition_by) or None,
            commit_properties=props,
        )
    except Exception as exc:
        raise LakeError(f"repartition of {spec.name} failed: {describe_error(exc)}") from exc
    log.info("%s: partitioned by %s at version %d", spec.name, spec.partition_by, dt.version())
    return rows


def _conformed(lake: Lake, spec: TableSpec, dt: DeltaTable) -> pa.RecordBatchReader:
    """The snapshot's rows batch by batch, as the registry shapes them (derived columns
    set), so a large table is rewritten without holding it in memory."""
    import pyarrow as pa

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in dt.to_pyarrow_dataset().to_batches():
            yield from lake.conform(spec, pa.Table.from_batches([batch])).to_batches()

    return pa.RecordBatchReader.from_batches(spec.schema, batches())
