"""The rows a Delta table gained after a version, found in its commit log.

An incremental stage keeps a cursor: the id of the table it reads and the version it
read through. The next run reads the commits after that version and scans only the
data files they added with `dataChange: true`, so its cost follows what is new, not
the table's age. A rewrite that changes no data (OPTIMIZE, `dataChange: false`) is
not new: its files are skipped, and when it folded a file this run still has to read
into a bigger one, the original file is read instead while it is still on disk (a
vacuum may have removed it: then the files the rewrite produced are read, which holds
the same rows and some old ones, harmless to a stage that merges on its key).

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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from smarttrader_cli.errors import LakeError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pa_fs
    from deltalake import DeltaTable

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.lake.tables import TableSpec


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
class Changes:
    """The data files holding the rows the commits (after, through] added."""

    after: int
    through: int
    paths: tuple[str, ...]  # relative to the table root
    rows: int  # numRecords of those files, as the log records them
    # a partitioned table's partition values of each path (in the log, not in the file)
    partitions: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def dataset(self, lake: Lake, spec: TableSpec, schema: pa.Schema) -> ds.Dataset:
        """The files as one dataset with `schema` (the snapshot's: older files get nulls;
        partition columns take their values from the log)."""
        import pyarrow.dataset as ds

        fs = _filesystem(lake, spec)
        if not any(self.partitions.values()):
            return ds.dataset(list(self.paths), schema=schema, format="parquet", filesystem=fs)
        parquet = ds.ParquetFileFormat()
        fragments = [
            parquet.make_fragment(
                path, filesystem=fs, partition_expression=_partition(self.partitions[path], schema)
            )
            for path in self.paths
        ]
        return ds.FileSystemDataset(fragments, schema, parquet, fs)


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

    dataset: ds.Dataset | None
    why: str
    cursor: tuple[str, int]  # (app id, the source version read through)
    first: bool = False  # the reader's table does not exist yet


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


def added_since(lake: Lake, spec: TableSpec, snapshot: DeltaTable, after: int) -> Changes:
    """The files of `snapshot`'s commits after version `after` that hold rows new to them.

    ChangesUnavailable when those commits can no longer be read as they were written.
    """
    through = snapshot.version()
    if after > through:
        raise ChangesUnavailable(
            f"{spec.name} is at version {through}, behind the cursor's {after} "
            "(restored or recreated)"
        )
    fs = _filesystem(lake, spec)
    lineages: dict[str, _Lineage] = {}
    sizes: dict[str, int] = {}
    partitions: dict[str, dict[str, str | None]] = {}
    for version in range(after + 1, through + 1):
        adds, removes = _file_actions(fs, spec, version)
        rewritten = {path for path, changed in removes.items() if not changed}
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
    for path, lineage in lineages.items():
        if not lineage.moved and not lineage.changed:
            paths |= lineage.holders
        elif not lineage.changed and _on_disk(fs, path):
            paths.add(path)
        else:
            paths |= lineage.holders
    return Changes(
        after,
        through,
        tuple(sorted(paths)),
        sum(sizes.get(p, 0) for p in paths),
        _partitions_of(fs, spec, paths, partitions),
    )


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
