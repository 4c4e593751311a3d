"""Delta tables under one lake root: every write is one atomic commit with metadata."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from smarttrader_cli.errors import LakeError, TableNotFoundError
from smarttrader_cli.host import dir_problem
from smarttrader_cli.lake.commits import CommitMeta, with_user_metadata
from smarttrader_cli.lake.object_store import describe_error, lake_storage_options
from smarttrader_cli.lake.properties import TableProperties
from smarttrader_cli.lake.read_ahead import read_ahead
from smarttrader_cli.lake.readers import not_written
from smarttrader_cli.lake.tables import TableSpec

if TYPE_CHECKING:
    from deltalake import DeltaTable, Transaction

    from smarttrader_cli.config import LoadedConfig

T = TypeVar("T")
log = logging.getLogger("st.lake")

FIRST_COMMIT = "00000000000000000000.json"
POOL_SECONDS = 60.0  # a table handed back longer ago than this is opened anew, not updated


class Lake:
    """The lake: Delta tables addressed by registry name."""

    def __init__(
        self,
        root: str,
        storage_options: dict[str, str] | None = None,
        commit_retries: int = 8,
        properties: TableProperties | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.commit_retries = commit_retries
        self.properties = properties or TableProperties()
        self._current: set[str] = set()  # tables checked against the registry schema
        # Opened tables handed back after a look at their state, by table name: the next
        # open of the same table brings one up to date (it reads only the newer commits)
        # instead of loading its checkpoint again, which costs more as tombstones of
        # compacted files pile up in it. A pooled table has one holder at a time.
        self._pool: dict[str, tuple[DeltaTable, float]] = {}
        self._pool_lock = threading.Lock()

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> Lake:
        """The lake the config points at."""
        lake = loaded.config.lake
        properties = TableProperties(
            lake.checkpoint_interval,
            lake.log_retention_hours,
            lake.vacuum_retention_hours,
            lake.frequent_log_retention_hours,
        )
        return cls(lake.root, lake_storage_options(loaded), lake.commit_retries, properties)

    @property
    def is_remote(self) -> bool:
        return "://" in self.root

    def uri(self, spec: TableSpec) -> str:
        """Where a table lives: <root>/<layer>/<table>."""
        if self.is_remote:
            return f"{self.root}/{spec.relative_path}"
        return str(Path(self.root).resolve() / spec.relative_path)

    def check_writable(self) -> None:
        """Fail early with a clear message when a local root cannot be written."""
        if self.is_remote:
            return
        root = Path(self.root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LakeError(f"lake root {root} is not writable: {exc.strerror}") from exc
        problem = dir_problem(root)  # the same probe `st doctor` runs
        if problem:
            raise LakeError(f"lake root {root} is {problem}")

    # --- reading ----------------------------------------------------------

    def exists(self, spec: TableSpec) -> bool:
        """Whether the table has been written. On a local lake this looks for the files a
        Delta log starts from (its first commit, or a checkpoint once older commits have
        expired): deltalake's own check lists the whole log folder."""
        from deltalake import DeltaTable

        if not self.is_remote:
            log_dir = self._log_dir(spec)
            return (log_dir / FIRST_COMMIT).is_file() or (log_dir / "_last_checkpoint").is_file()
        try:
            return DeltaTable.is_deltatable(self.uri(spec), storage_options=self.storage_options)
        except Exception as exc:  # the object store's own errors are not typed
            raise LakeError(f"cannot reach lake at {self.root}: {describe_error(exc)}") from exc

    def table(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        """Open a table, optionally at a version; TableNotFoundError if never written.

        Its pyarrow scans read through a native Arrow filesystem (see lake/scan.py). The
        caller owns the table returned (no other caller holds it).
        """
        from deltalake.exceptions import TableNotFoundError as DeltaNotFound

        from smarttrader_cli.lake.scan import LakeTable

        if version is None:
            pooled = self._pooled(spec)
            if pooled is not None:
                return pooled
        try:
            return LakeTable(self.uri(spec), version=version, storage_options=self.storage_options)
        except DeltaNotFound:
            raise TableNotFoundError(not_written(spec)) from None
        except Exception as exc:
            raise LakeError(f"cannot open {spec.name}: {describe_error(exc)}") from exc

    def _pooled(self, spec: TableSpec) -> DeltaTable | None:
        """A table handed back by an earlier caller, brought to the latest version."""
        with self._pool_lock:
            held = self._pool.pop(spec.name, None)
        if held is None or time.monotonic() - held[1] > POOL_SECONDS:
            return None
        table = held[0]
        try:
            table.update_incremental()
        except Exception as exc:  # e.g. the table was removed: a fresh open says how
            log.debug("pooled %s not updated (%s); opening it again", spec.name, exc)
            return None
        # A table removed and created anew restarts its versions: the commit this one
        # stands at is then gone (expiry removes only commits older than the latest).
        commit = f"{table.version():020d}.json"
        if not self.is_remote and not (self._log_dir(spec) / commit).is_file():
            return None
        return table

    def _log_dir(self, spec: TableSpec) -> Path:
        """A local table's `_delta_log` folder."""
        return Path(self.uri(spec)) / "_delta_log"

    def hand_back(self, spec: TableSpec, table: DeltaTable) -> None:
        """Give a table from `table()` back for the next open to update instead of
        loading (the caller neither keeps it nor writes through it afterwards)."""
        with self._pool_lock:
            self._pool[spec.name] = (table, time.monotonic())

    @contextmanager
    def latest(self, spec: TableSpec) -> Iterator[DeltaTable]:
        """The table at its latest version, for a look at its state within the block."""
        table = self.table(spec)
        yield table
        self.hand_back(spec, table)

    def read(
        self,
        spec: TableSpec,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """The table's rows as Arrow (empty with the registry schema if never written)."""
        if not self.exists(spec):
            empty = spec.schema.empty_table()
            return empty.select(list(columns)) if columns else empty
        dt = self.table(spec, version=version)
        if as_of is not None:
            dt.load_as_version(as_of)
        rows = dt.to_pyarrow_table(columns=list(columns) if columns else None)
        if version is None and as_of is None:
            self.hand_back(spec, dt)
        return rows

    def version(self, spec: TableSpec) -> int | None:
        if not self.exists(spec):
            return None
        with self.latest(spec) as table:
            return table.version()

    def app_transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        """The last version recorded for an application transaction (stream offsets)."""
        if not self.exists(spec):
            return None
        with self.latest(spec) as table:
            return table.transaction_version(app_id)

    def history(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first, with their CommitMeta keys on top whichever engine wrote."""
        with self.latest(spec) as table:
            return [with_user_metadata(entry) for entry in table.history(limit)]

    # --- writing ----------------------------------------------------------

    def conform_stream(self, spec: TableSpec, data: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """`data`'s batches conformed one by one (see conform): a stream stays a stream. They
        are read ahead (read_ahead.py): the query producing them runs while deltalake
        encodes the ones it has."""

        def batches() -> Any:
            for batch in data:
                yield from self.conform(spec, pa.Table.from_batches([batch])).to_batches()

        return pa.RecordBatchReader.from_batches(spec.schema, read_ahead(batches()))

    def _conformed(
        self, spec: TableSpec, data: pa.Table | pa.RecordBatchReader, rows: int | None
    ) -> tuple[pa.Table | pa.RecordBatchReader, int]:
        """`data` conformed, and its row count (a stream's: `rows`, which the caller knows)."""
        if isinstance(data, pa.Table):
            return self.conform(spec, data), data.num_rows
        if rows is None:
            raise LakeError(f"{spec.name}: a stream of rows is written with its row count")
        return self.conform_stream(spec, data), rows

    def conform(self, spec: TableSpec, data: pa.Table) -> pa.Table:
        """Reorder and cast `data` to the registry schema; missing columns become null."""
        import pyarrow.compute as pc

        unknown = set(data.column_names) - set(spec.schema.names)
        if unknown:
            raise LakeError(f"{spec.name}: columns not in the schema: {sorted(unknown)}")
        arrays = []
        derived: dict[str, list[str]] = {}
        for date_column, time_column in spec.dates_of:
            if time_column in data.column_names:
                derived.setdefault(date_column, []).append(time_column)
        try:
            for f in spec.schema:
                if f.name in derived:  # the UTC date of the first of its times that is set
                    times = [
                        data.column(c).cast(spec.schema.field(c).type) for c in derived[f.name]
                    ]
                    arrays.append(pc.coalesce(*times).cast(f.type))
                elif f.name in data.column_names:
                    arrays.append(data.column(f.name).cast(f.type))
                else:
                    arrays.append(pa.nulls(data.num_rows, f.type))
            return pa.Table.from_arrays(arrays, schema=spec.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise LakeError(f"{spec.name}: rows do not fit the schema: {exc}") from exc

    def ensure_table(self, spec: TableSpec) -> None:
        """Create the table if it does not exist yet, or bring an older one up to date.

        Columns the registry gained since the table was created are added (nullable,
        as Delta requires) and filled with their `backfill` value in a second commit.
        """
        if self.exists(spec):
            if spec.name not in self._current:
                self.evolve(spec)
            return
        from deltalake import DeltaTable

        self.check_writable()
        with self._pool_lock:
            self._pool.pop(spec.name, None)  # what it held was of a table since removed
        try:
            DeltaTable.create(
                self.uri(spec),
                schema=spec.schema,
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                name=spec.name,
                description=spec.description,
                configuration=self.properties.as_delta(spec.frequent),
                storage_options=self.storage_options,
            )
        except Exception as exc:
            if not self.exists(spec):  # losing a creation race is fine
                raise LakeError(f"cannot create {spec.name}: {describe_error(exc)}") from exc

    def evolve(self, spec: TableSpec) -> tuple[list[str], int]:
        """Add the registry's columns a table lacks and backfill them: (added, rows filled)."""
        from deltalake import CommitProperties
        from deltalake.schema import Field

        with self.latest(spec) as dt:
            have = set(dt.schema().to_arrow().names)
        missing = [f for f in spec.schema if f.name not in have]
        if missing:
            dt = self.table(spec)
            props = CommitProperties(
                custom_metadata={"st_operation": "add columns", "columns": ",".join(
                    f.name for f in missing
                )}
            )  # fmt: skip
            try:
                dt.alter.add_columns(
                    [Field.from_arrow(f.with_nullable(True)) for f in missing],
                    commit_properties=props,
                )
            except Exception as exc:
                if not set(f.name for f in missing) <= set(
                    self.table(spec).schema().to_arrow().names
                ):  # another writer adding the same columns first is fine
                    raise LakeError(
                        f"cannot add columns to {spec.name}: {describe_error(exc)}"
                    ) from exc
        added = {f.name for f in missing}
        filled = sum(
            self.backfill(spec, column, value) for column, value in spec.backfill if column in added
        )
        self._current.add(spec.name)
        return sorted(added), filled

    def backfill(self, spec: TableSpec, column: str, value: str) -> int:
        """Set `column` to the SQL literal `value` where it is null; returns the rows set."""
        from deltalake import CommitProperties

        props = CommitProperties(custom_metadata={"st_operation": f"backfill {column}"})
        metrics = self._retrying_races(
            spec,
            "backfill of",
            lambda dt: dt.update(
                predicate=f"{column} IS NULL", updates={column: value}, commit_properties=props
            ),
        )
        return int(metrics.get("num_updated_rows", 0))

    def append(
        self,
        spec: TableSpec,
        data: pa.Table | pa.RecordBatchReader,
        meta: CommitMeta,
        app_transactions: Sequence[tuple[str, int]] = (),
        snapshot: DeltaTable | None = None,
        row_group_rows: int | None = None,
        rows_count: int | None = None,
    ) -> int:
        """Append rows (and optional application transactions) in one commit; returns the version.

        `row_group_rows` caps the rows per Parquet row group (finer statistics for readers
        that skip by them). `data` may be a stream of record batches, written as it comes
        (never whole in memory), with its row count in `rows_count` for the commit metadata.

        With `snapshot` (a DeltaTable the caller read its state from), the commit is checked
        against everything committed since that snapshot: a concurrent commit of the same
        application transaction fails it (the cause is deltalake's CommitFailedError), and
        the snapshot is advanced to the new version on success.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        if snapshot is None:
            self.ensure_table(spec)
        rows, count = self._conformed(spec, data, rows_count)
        props = CommitProperties(
            custom_metadata=meta.as_metadata(count, "append"),
            max_commit_retries=self.commit_retries,
            app_transactions=[Transaction(app_id, version) for app_id, version in app_transactions]
            or None,
        )
        target = snapshot if snapshot is not None else self._pooled(spec)
        try:
            write_deltalake(
                target if target is not None else self.uri(spec),
                rows,
                mode="append",
                storage_options=None if target is not None else self.storage_options,
                commit_properties=props,
                writer_properties=_writer_properties(spec, row_group_rows),
            )
        except Exception as exc:
            raise LakeError(f"append to {spec.name} failed: {describe_error(exc)}") from exc
        if snapshot is not None:
            return snapshot.version()
        return self._version_after_write(spec, target)

    def overwrite(
        self,
        spec: TableSpec,
        data: pa.Table | pa.RecordBatchReader,
        meta: CommitMeta,
        predicate: str | None = None,
        app_transactions: Sequence[tuple[str, int]] = (),
        row_group_rows: int | None = None,
        rows_count: int | None = None,
        replace_schema: bool = False,
    ) -> int:
        """Replace the table (or the rows matching `predicate`) in one commit
        (`row_group_rows`, a stream and `rows_count`: see append). `replace_schema` drops
        columns the registry no longer has and takes its partitioning (a whole-table
        overwrite of derived state)."""
        from deltalake import CommitProperties, write_deltalake

        self.ensure_table(spec)
        rows, count = self._conformed(spec, data, rows_count)
        props = CommitProperties(
            custom_metadata=meta.as_metadata(count, "overwrite"),
            max_commit_retries=self.commit_retries,
            app_transactions=_transactions(app_transactions),
        )
        target = self._pooled(spec)
        try:
            write_deltalake(
                target if target is not None else self.uri(spec),
                rows,
                mode="overwrite",
                predicate=predicate,
                schema_mode="overwrite" if replace_schema else None,
                # a derived table's partitioning follows the registry, like its columns
                # (an empty list takes partitions away)
                partition_by=list(spec.partition_by) if replace_schema else None,
                storage_options=None if target is not None else self.storage_options,
                commit_properties=props,
                writer_properties=_writer_properties(spec, row_group_rows),
            )
        except Exception as exc:
            raise LakeError(f"overwrite of {spec.name} failed: {describe_error(exc)}") from exc
        return self._version_after_write(spec, target)

    def _version_after_write(self, spec: TableSpec, written: DeltaTable | None) -> int:
        """The version a write through `written` (None: through the table's URI) made;
        the table is kept for the next open."""
        if written is None:
            written = self.table(spec)
        self.hand_back(spec, written)  # deltalake advanced it to the commit it made
        return written.version()

    def merge(
        self,
        spec: TableSpec,
        data: pa.Table,
        meta: CommitMeta,
        *,
        update_existing: bool = True,
        delete_predicate: str | None = None,
        retries: int | None = None,
        app_transactions: Sequence[tuple[str, int]] = (),
    ) -> MergeResult:
        """Upsert on the natural key in one commit; a lost commit race is retried on fresh state.

        With `delete_predicate`, target rows matching it that are absent from `data` are
        deleted in the same commit (used to replace one wallet's rows exactly);
        `app_transactions` (app id, version) are committed with the rows (a reader's cursor).
        """
        from deltalake import CommitProperties

        if not spec.keys:
            raise LakeError(f"{spec.name} has no natural key to merge on")
        self.ensure_table(spec)
        rows = dedupe_last(self.conform(spec, data), spec.keys)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.keys)

        def execute(dt: DeltaTable) -> dict[str, Any]:
            props = CommitProperties(
                custom_metadata=meta.as_metadata(rows.num_rows, "merge"),
                app_transactions=_transactions(app_transactions),
            )
            # Bounded to the rows' partitions, the merge scans and rewrites only their files;
            # not with a delete of rows absent from `data`, which must see every partition.
            bound = None if delete_predicate else partition_bound(dt, rows, "t")
            merger = dt.merge(
                rows,
                predicate=predicate if bound is None else f"{predicate} AND {bound}",
                source_alias="s",
                target_alias="t",
                commit_properties=props,
            )
            if update_existing:
                merger = merger.when_matched_update_all()
            merger = merger.when_not_matched_insert_all()
            if delete_predicate:
                merger = merger.when_not_matched_by_source_delete(delete_predicate)
            return merger.execute()

        metrics = self._retrying_races(spec, "merge into", execute, retries)
        return MergeResult(
            version=self.version(spec) or 0,
            inserted=int(metrics.get("num_target_rows_inserted", 0)),
            updated=int(metrics.get("num_target_rows_updated", 0)),
            deleted=int(metrics.get("num_target_rows_deleted", 0)),
        )

    def vacuum(self, spec: TableSpec, retention_hours: float, dry_run: bool) -> list[str]:
        """Remove files unreferenced for `retention_hours` (whole hours, rounded up); returns
        them (or would, dry run).

        A full vacuum: every file of the table's folder that its snapshot does not hold, not
        only the files its log still records as removed. A checkpoint drops the record of a
        file removed longer ago than delta.deletedFileRetentionDuration, and a daily vacuum
        comes up to a day after that: by the record alone, most removed files would stay on
        disk for good. A file never committed (a write that failed) goes too, once older
        than the retention; a write still in progress is younger. With a retention of 0 it
        would not be, so then only the files the log records as removed go.

        Vacuum commits too, so a stage writing meanwhile can win the race: retried like merge.
        """
        return self._retrying_races(
            spec,
            "vacuum of",
            lambda dt: dt.vacuum(
                retention_hours=math.ceil(retention_hours),
                dry_run=dry_run,
                enforce_retention_duration=False,
                full=retention_hours > 0,
            ),
        )

    def optimize(
        self,
        spec: TableSpec,
        target_size: int | None = None,
        meta: CommitMeta | None = None,
        partition_filters: list[tuple[str, str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Compact small files into files of about `target_size` bytes (default: deltalake's),
        in the partitions `partition_filters` select (default: all); returns deltalake's
        metrics. Its commit changes no data (dataChange=false)."""
        from deltalake import CommitProperties

        props = CommitProperties(custom_metadata=meta.as_metadata(0, "optimize")) if meta else None
        return self._retrying_races(
            spec,
            "optimize of",
            lambda dt: dt.optimize.compact(
                partition_filters=partition_filters,
                target_size=target_size,
                commit_properties=props,
            ),
        )

    def _retrying_races(
        self,
        spec: TableSpec,
        what: str,
        action: Callable[[DeltaTable], T],
        retries: int | None = None,
    ) -> T:
        """Run `action` on the table's latest state, again on fresh state after a lost race."""
        from deltalake.exceptions import CommitFailedError

        retries = self.commit_retries if retries is None else retries
        last_error: Exception | None = None
        for attempt in range(retries + 1):
            try:
                table = self.table(spec)
                done = action(table)
                self.hand_back(spec, table)
                return done
            except CommitFailedError as exc:
                last_error = exc
                log.info(
                    "%s %s lost a commit race (attempt %d); retrying", what, spec.name, attempt + 1
                )
                # Full jitter: writers that lost the same race must not retry in lockstep.
                time.sleep(random.uniform(0.0, min(4.0, 0.05 * 2**attempt)))
            except Exception as exc:
                raise LakeError(f"{what} {spec.name} failed: {describe_error(exc)}") from exc
        raise LakeError(
            f"{what} {spec.name} lost {retries + 1} commit races: {describe_error(last_error)}"
        )

    def delete(self, spec: TableSpec, predicate: str, meta: CommitMeta) -> int:
        """Delete matching rows in one commit; returns the number deleted."""
        from deltalake import CommitProperties

        if not self.exists(spec):
            return 0
        props = CommitProperties(
            custom_metadata=meta.as_metadata(0, "delete"), max_commit_retries=self.commit_retries
        )
        table = self.table(spec)
        try:
            metrics = table.delete(predicate, commit_properties=props)
        except Exception as exc:
            raise LakeError(f"delete from {spec.name} failed: {describe_error(exc)}") from exc
        self.hand_back(spec, table)
        return int(metrics.get("num_deleted_rows", 0))


@dataclass
class MergeResult:
    """What one merge commit did."""

    version: int
    inserted: int
    updated: int
    deleted: int = 0


def partition_bound(dt: DeltaTable, rows: pa.Table, alias: str) -> str | None:
    """A SQL predicate on `dt`'s partition columns that holds only in the partitions of
    `rows` (None: the table is not partitioned, or a value has no literal here)."""
    import pyarrow.compute as pc

    terms = []
    for column in dt.metadata().partition_columns:
        if column not in rows.column_names:
            return None
        values = pc.unique(rows.column(column))
        if not (pa.types.is_date32(values.type) or pa.types.is_string(values.type)):
            return None
        literals = sorted({f"'{v}'" for v in values.to_pylist() if v is not None})
        if any("'" in literal[1:-1] for literal in literals):
            return None
        any_of = [f"{alias}.{column} IN ({', '.join(literals)})"] if literals else []
        if values.null_count:
            any_of.append(f"{alias}.{column} IS NULL")
        terms.append(f"({' OR '.join(any_of)})" if any_of else "FALSE")
    return " AND ".join(terms) or None


def _writer_properties(spec: TableSpec, row_group_rows: int | None) -> Any:
    """deltalake's writer properties: at most `row_group_rows` rows per row group, and
    spec.plain_columns without a dictionary (None: its defaults). Snappy, as deltalake's
    defaults: properties without a codec would write the pages uncompressed."""
    if row_group_rows is None and not spec.plain_columns:
        return None
    from deltalake import ColumnProperties, WriterProperties

    plain = ColumnProperties(dictionary_enabled=False)
    return WriterProperties(
        max_row_group_size=row_group_rows,
        compression="SNAPPY",
        column_properties={c: plain for c in spec.plain_columns} or None,
    )


def _transactions(pairs: Sequence[tuple[str, int]]) -> list[Transaction] | None:
    """deltalake's application transactions for (app id, version) pairs."""
    from deltalake import Transaction

    return [Transaction(app_id, version) for app_id, version in pairs] or None


def dedupe_last(data: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Keep the last row for each key so a merge never sees duplicate source keys."""
    if data.num_rows < 2:
        return data
    indexed = data.append_column("__row", pa.array(range(data.num_rows), pa.int64()))
    last = indexed.group_by(list(keys), use_threads=False).aggregate([("__row", "max")])
    if last.num_rows == data.num_rows:
        return data
    import pyarrow.compute as pc

    keep = pc.sort_indices(last.column("__row_max"))
    return data.take(pc.take(last.column("__row_max"), keep))


__all__ = ["CommitMeta", "Lake", "MergeResult", "lake_storage_options"]
