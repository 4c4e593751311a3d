"""The rows a Delta table gained after a version, found in its commit log.

An incremental stage keeps a cursor: the id of the table it reads and the version it
read through. The next run reads the commits after that version and scans only the
data files they added with `dataChange: true`, so its cost follows what is new, not
the table's age. A rewrite that changes no data (OPTIMIZE, `dataChange: false`) is
not new: its files are skipped, and when it folded files this run still has to read
into bigger ones, the original files are read instead while they are still on disk. A
vacuum may have removed one, before the run planned or between planning and reading:
then the files the rewrite produced are read instead of all the originals they hold,
which gives the same rows and some old ones (harmless to a stage that merges on its
key), each once. A fold is read whole or not at all, so a row is never read both from
an original and from the file it was folded into. (A file of the snapshot itself, which
a compaction and a vacuum would both have to remove after the snapshot was loaded, is
not looked for elsewhere: that is the hazard of every snapshot reader, which
`lake.vacuum_retention_hours` keeps away.)

The cursor is an application transaction (`txn`) in the stage's own output table,
committed with its data. Delta keeps the newest `txn` of every app id in each
checkpoint, so reading it costs the same after a year of commits, whatever else
(compaction, vacuum, chunk merges) was committed in between.

A partitioned table's files hold no partition columns: the dataset takes them from
the `partitionValues` the log gives each file.

When the commits cannot be read (expired by log retention, the table recreated or
restored behind the cursor, deletion vectors), `ChangesUnavailable` says why, and the
stage reads every row instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from smarttrader_cli.errors import LakeError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pa_fs
    from deltalake import DeltaTable

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.lake.tables import TableSpec

log = logging.getLogger("st.lake")


class ChangesUnavailable(LakeError):
    """The commits after a cursor cannot be read; the message says why."""


def cursor_app_id(reader: str, source: TableSpec, source_id: str) -> str:
    """The `txn` app id under which `reader` keeps how far it read `source`.

    The source's table id is part of it: a recreated table is another table, whose
    versions the old cursor says nothing about.
    """
    return f"{reader}<-{source.name}#{source_id}"


def table_id(snapshot: DeltaTable) -> str:
    """The id a table got when it was created (its `metaData.id`)."""
    return str(snapshot.metadata().id)


@dataclass(frozen=True)
class Fold:
    """Files added after the cursor that rewrites without data change folded into others.

    `holders` (live in the snapshot) hold every row of `originals`, and rows read before.
    """

    originals: tuple[str, ...]
    holders: tuple[str, ...]


@dataclass(frozen=True)
class Changes:
    """The data files holding the rows the commits (after, through] added."""

    after: int
    through: int
    paths: tuple[str, ...]  # relative to the table root; read whatever else happens
    rows: int  # numRecords of the files added after the cursor, as the log records them
    # a partitioned table's partition values of each path (in the log, not in the file)
    partitions: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # read as their originals while those are on disk, else as their holders
    folds: tuple[Fold, ...] = ()
    # every path holds only rows new to the commits' reader: none moved into it from
    # elsewhere, and no commit removed files with a data change (which may add rows again)
    exact: bool = False

    def dataset(self, lake: Lake, spec: TableSpec, schema: pa.Schema) -> ChangedRows:
        """The rows, read with `schema` (the snapshot's: older files get nulls; partition
        columns take their values from the log)."""
        return ChangedRows(self, _filesystem(lake, spec), schema)


class ChangedRows:
    """The rows of a `Changes`, scanned as a dataset is (`to_batches`, `to_table`).

    Each fold is read from its originals into memory first (a fold is no bigger than the
    files one compaction wrote); when one of them is missing, whenever a vacuum took it,
    the fold's holders are read instead and nothing of the originals is kept.
    """

    def __init__(self, changes: Changes, fs: pa_fs.FileSystem, schema: pa.Schema) -> None:
        self.changes, self.schema, self._fs = changes, schema, fs
        self.fallbacks = 0  # folds read from their holders because an original was gone

    @property
    def exact(self) -> bool:
        """Whether what was read so far is exactly the rows the commits added (no file
        that also holds rows from before the cursor)."""
        return self.changes.exact and not self.fallbacks

    def to_batches(
        self,
        columns: list[str] | None = None,
        filter: ds.Expression | None = None,
        batch_size: int = 131_072,
    ) -> Iterator[pa.RecordBatch]:
        scan = {"columns": columns, "filter": filter, "batch_size": batch_size}
        yield from self._dataset(self.changes.paths).to_batches(**scan)
        for fold in self.changes.folds:
            originals = self._originals(fold, columns, filter)
            if originals is not None:
                yield from originals.to_batches(max_chunksize=batch_size)
            else:
                yield from self._dataset(fold.holders).to_batches(**scan)

    def to_table(
        self,
        columns: list[str] | None = None,
        filter: ds.Expression | None = None,
    ) -> pa.Table:
        import pyarrow as pa

        tables = [self._dataset(self.changes.paths).to_table(columns=columns, filter=filter)]
        for fold in self.changes.folds:
            originals = self._originals(fold, columns, filter)
            if originals is None:
                originals = self._dataset(fold.holders).to_table(columns=columns, filter=filter)
            tables.append(originals)
        return pa.concat_tables(tables)

    def _originals(
        self, fold: Fold, columns: list[str] | None, filter: ds.Expression | None
    ) -> pa.Table | None:
        """The rows of the fold's originals, or None when one of them is gone."""
        try:
            return self._dataset(fold.originals).to_table(columns=columns, filter=filter)
        except OSError:  # FileNotFoundError locally; object stores say it their own way
            gone = [path for path in fold.originals if not _on_disk(self._fs, path)]
            if not gone:
                raise
        log.info(
            "%s was removed after a compaction folded it: reading %d files that hold its rows",
            gone[0],
            len(fold.holders),
        )
        self.fallbacks += 1
        return None

    def _dataset(self, paths: tuple[str, ...]) -> ds.Dataset:
        import pyarrow.dataset as ds

        parquet = ds.ParquetFileFormat()
        partitions = self.changes.partitions
        fragments = [
            parquet.make_fragment(
                path,
                filesystem=self._fs,
                partition_expression=_partition(partitions.get(path) or {}, self.schema),
            )
            for path in paths
        ]
        return ds.FileSystemDataset(fragments, self.schema, parquet, self._fs)


def _partition(values: dict[str, str | None], schema: pa.Schema) -> ds.Expression:
    """The expression that fills a file's partition columns with its values in the log."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    expression = ds.scalar(True)
    for column, value in values.items():
        field = ds.field(column)
        typ = schema.field(column).type
        expression &= field.is_null() if value is None else field == pa.scalar(value).cast(typ)
    return expression


@dataclass(frozen=True)
class SinceCursor:
    """What a reader gets of a source this run, and the cursor to commit with its output.

    `dataset` is None when the cursor cannot be followed; `why` then says why (the reader
    picks its own fallback), else which files these are.
    """

    dataset: ds.Dataset | ChangedRows | None
    why: str
    cursor: tuple[str, int]  # (app id, the source version read through)
    first: bool = False  # the reader's table does not exist yet
    everything: bool = False  # a reader's fallback: `dataset` is every row, not the new ones


def since_cursor(
    lake: Lake, source: TableSpec, snapshot: DeltaTable, reader: str, target: TableSpec
) -> SinceCursor:
    """The rows `snapshot` (of `source`) gained since `reader`'s cursor in `target`."""
    import pyarrow as pa

    source_id = table_id(snapshot)
    app_id = cursor_app_id(reader, source, source_id)
    cursor = (app_id, snapshot.version())
    if not lake.exists(target):
        return SinceCursor(None, f"{target.name} is new", cursor, first=True)
    after = lake.app_transaction_version(target, app_id)
    if after is None:
        why = (
            f"{target.name} holds no cursor into {source.name} (table id {source_id}): "
            f"written before cursors, or {source.name} was recreated"
        )
        return SinceCursor(None, why, cursor)
    try:
        changes = added_since(lake, source, snapshot, after)
    except ChangesUnavailable as exc:
        return SinceCursor(None, f"cannot read what is new after the cursor: {exc}", cursor)
    # The snapshot's own Arrow schema, without the dataset of every file it would build.
    schema = pa.schema(snapshot.schema().to_arrow())
    why = f"{len(changes.paths)} files added after version {after}"
    return SinceCursor(changes.dataset(lake, source, schema), why, cursor)


@dataclass
class _Lineage:
    """Where the rows of one newly added file live now."""

    holders: set[str]
    moved: bool = False  # folded into other files by a rewrite without data change
    changed: bool = False  # a file holding them was later removed with a data change


def _through(spec: TableSpec, snapshot: DeltaTable, after: int) -> int:
    """`snapshot`'s version; ChangesUnavailable when it is behind the cursor `after`."""
    through = snapshot.version()
    if after > through:
        raise ChangesUnavailable(
            f"{spec.name} is at version {through}, behind the cursor's {after} "
            "(restored or recreated)"
        )
    return through


def added_since(lake: Lake, spec: TableSpec, snapshot: DeltaTable, after: int) -> Changes:
    """The files of `snapshot`'s commits after version `after` that hold rows new to them.

    ChangesUnavailable when those commits can no longer be read as they were written.
    """
    through = _through(spec, snapshot, after)
    fs = _filesystem(lake, spec)
    lineages: dict[str, _Lineage] = {}
    sizes: dict[str, int] = {}
    partitions: dict[str, dict[str, str | None]] = {}
    exact = True
    for version in range(after + 1, through + 1):
        adds, removes = _file_actions(fs, spec, version)
        rewritten = {path for path, changed in removes.items() if not changed}
        # a data change that removed files (an overwrite, a merge, a delete, a rewrite into
        # partitions) may add again rows read before: the added files are new, their rows not
        exact &= len(rewritten) == len(removes)
        for path, (changed, records, values) in adds.items():
            sizes[path] = records
            partitions[path] = values
            if changed:
                lineages[path] = _Lineage({path})
        quiet = {path for path, (changed, _, _) in adds.items() if not changed}
        for lineage in lineages.values():
            gone = lineage.holders & removes.keys()
            if not gone:
                continue
            lineage.holders -= gone
            if gone & rewritten:
                lineage.moved = True
                lineage.holders |= quiet
            if gone - rewritten:
                lineage.changed = True
    paths: set[str] = set()
    moved: dict[str, set[str]] = {}  # original → holders, of rows that only moved
    for path, lineage in lineages.items():
        if lineage.moved and not lineage.changed and lineage.holders:
            moved[path] = lineage.holders
        else:
            paths |= lineage.holders
            exact &= lineage.holders <= {path}
    folds = []
    for originals, holders in _connected(moved):
        if holders & paths:  # read anyway: its originals' rows are in it
            paths |= holders
            exact = False
        else:
            folds.append(Fold(tuple(sorted(originals)), tuple(sorted(holders))))
    every = paths | {p for fold in folds for p in fold.originals + fold.holders}
    return Changes(
        after,
        through,
        tuple(sorted(paths)),
        sum(sizes.get(p, 0) for p in paths | moved.keys()),
        _partitions_of(fs, spec, every, partitions),
        tuple(folds),
        exact,
    )


def _connected(moved: dict[str, set[str]]) -> list[tuple[set[str], set[str]]]:
    """The originals and holders of `moved` grouped so that no holder is in two groups:
    an original read alone must not also be read in a holder another group falls back to."""
    groups: list[tuple[set[str], set[str]]] = []
    for original, holders in sorted(moved.items()):
        joined = [g for g in groups if g[1] & holders]
        merged = ({original}, set(holders))
        for group in joined:
            groups.remove(group)
            merged[0].update(group[0])
            merged[1].update(group[1])
        groups.append(merged)
    return groups


def _partitions_of(
    fs: pa_fs.FileSystem,
    spec: TableSpec,
    paths: set[str],
    seen: dict[str, dict[str, str | None]],
) -> dict[str, dict[str, str | None]]:
    """The partition values of `paths`: from the commits read, else (a file added before
    the cursor, read because a rewrite after it folded rows into another) from its
    directory names, which delta-rs writes as `column=value`."""
    out = {}
    for path in paths:
        if path in seen:
            out[path] = seen[path]
            continue
        values: dict[str, str | None] = {}
        for part in path.split("/")[:-1]:
            column, sep, value = part.partition("=")
            if sep:
                values[column] = None if value == "__HIVE_DEFAULT_PARTITION__" else value
        out[path] = values
    return out


def _file_actions(
    fs: pa_fs.FileSystem, spec: TableSpec, version: int
) -> tuple[dict[str, tuple[bool, int, dict[str, str | None]]], dict[str, bool]]:
    """A commit's added files (path → (dataChange, numRecords, partition values)) and
    removed ones (→ dataChange)."""
    raw = _commit_file(fs, spec, version)
    adds: dict[str, tuple[bool, int, dict[str, str | None]]] = {}
    removes: dict[str, bool] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        action: dict[str, Any] = orjson.loads(line)
        for kind in ("add", "remove"):
            entry = action.get(kind)
            if not isinstance(entry, dict):
                continue
            if entry.get("deletionVector"):
                raise ChangesUnavailable(
                    f"version {version} of {spec.name} has deletion vectors, which only a "
                    "snapshot read applies"
                )
            path = str(entry["path"])
            if "://" in path:
                raise ChangesUnavailable(
                    f"version {version} of {spec.name} adds a file outside the table ({path})"
                )
            path = unquote(path)
            changed = bool(entry.get("dataChange", True))
            if kind == "add":
                values = entry.get("partitionValues") or {}  # in the log, not in the file
                adds[path] = (changed, _records(entry), dict(values))
            else:
                removes[path] = changed
    return adds, removes


def _commit_file(fs: pa_fs.FileSystem, spec: TableSpec, version: int) -> bytes:
    import pyarrow.fs as pa_fs

    name = f"_delta_log/{version:020d}.json"
    try:
        with fs.open_input_stream(name) as stream:
            return bytes(stream.readall())
    except (FileNotFoundError, OSError) as exc:
        if fs.get_file_info(name).type == pa_fs.FileType.NotFound:
            raise ChangesUnavailable(
                f"version {version} of {spec.name} is no longer in its log (log retention)"
            ) from None
        raise LakeError(f"cannot read version {version} of {spec.name}: {exc}") from exc


def _records(entry: dict[str, Any]) -> int:
    stats = entry.get("stats")
    if not isinstance(stats, str):
        return 0
    try:
        return int(orjson.loads(stats).get("numRecords", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0


def _on_disk(fs: pa_fs.FileSystem, path: str) -> bool:
    import pyarrow.fs as pa_fs

    return fs.get_file_info(path).type == pa_fs.FileType.File


def _filesystem(lake: Lake, spec: TableSpec) -> pa_fs.FileSystem:
    """The table root as an Arrow filesystem: native where lake/scan.py has one."""
    import pyarrow.fs as pa_fs
    from deltalake.fs import DeltaStorageHandler

    from smarttrader_cli.lake.scan import table_filesystem

    uri = lake.uri(spec)
    native = table_filesystem(uri, lake.storage_options)
    if native is not None:
        return native
    return pa_fs.PyFileSystem(DeltaStorageHandler(uri, lake.storage_options))


def removed_since(lake: Lake, spec: TableSpec, snapshot: DeltaTable, after: int) -> Changes:
    """The files that `snapshot`'s commits after version `after` removed with a data change
    (a delete, a merge, an overwrite): the rows that may be gone or changed since then.

    A removed file that a commit after `after` had added held nothing the reader saw and is
    left out. ChangesUnavailable when the commits cannot be read or a removed file is no
    longer on disk (vacuumed), or the table is partitioned (its files' partition values
    would have to be found in older commits).
    """
    through = _through(spec, snapshot, after)
    if spec.partition_by:
        raise ChangesUnavailable(f"{spec.name} is partitioned")
    fs = _filesystem(lake, spec)
    added: set[str] = set()
    removed: set[str] = set()
    for version in range(after + 1, through + 1):
        adds, removes = _file_actions(fs, spec, version)
        removed |= {path for path, changed in removes.items() if changed and path not in added}
        added |= adds.keys()
    for path in sorted(removed):
        if not _on_disk(fs, path):
            raise ChangesUnavailable(
                f"{path} of {spec.name}, removed after version {after}, is no longer on disk"
            )
    return Changes(after, through, tuple(sorted(removed)), 0)


def rows_only_added(lake: Lake, spec: TableSpec, snapshot: DeltaTable, after: int) -> str | None:
    """Why `snapshot`'s commits after version `after` may have deleted rows, or None when
    they did not: each appended, merged without deleting (a merge's rewritten rows are in
    the files it added) or rewrote without data change. ChangesUnavailable as added_since.
    """
    through = _through(spec, snapshot, after)
    fs = _filesystem(lake, spec)
    for version in range(after + 1, through + 1):
        _, removes = _file_actions(fs, spec, version)
        if not any(removes.values()):
            continue
        info = _commit_info(_commit_file(fs, spec, version))
        metrics = info.get("operationMetrics") or {}
        if info.get("operation") != "MERGE" or int(metrics.get("num_target_rows_deleted", 1)):
            return f"version {version} of {spec.name} removed data ({info.get('operation')})"
    return None


def _commit_info(raw: bytes) -> dict[str, Any]:
    for line in raw.splitlines():
        if line.strip():
            info = orjson.loads(line).get("commitInfo")
            if isinstance(info, dict):
                return info
    return {}
