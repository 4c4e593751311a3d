"""Delta tables under one lake root: every write is one atomic commit with metadata."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from smarttrader_cli.errors import LakeError, TableNotFoundError
from smarttrader_cli.lake.readers import not_written
from smarttrader_cli.lake.tables import TableSpec

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.config import LoadedConfig

T = TypeVar("T")


@dataclass
class CommitMeta:
    """What every commit records about the run that made it."""

    run_id: str
    stage: str
    config_hash: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self, rows: int, operation: str) -> dict[str, str]:
        meta = {
            "run_id": self.run_id,
            "stage": self.stage,
            "config_hash": self.config_hash,
            "st_operation": operation,
            "rows": str(rows),
        }
        meta.update({k: str(v) for k, v in self.extra.items()})
        return meta


def lake_storage_options(loaded: LoadedConfig) -> dict[str, str]:
    """Storage options for deltalake: config values plus credentials from the environment."""
    options = dict(loaded.config.lake.storage_options)
    secrets = loaded.secrets
    if loaded.config.lake.root.startswith("s3://"):
        if secrets.aws_access_key_id:
            options.setdefault("AWS_ACCESS_KEY_ID", secrets.aws_access_key_id)
        if secrets.aws_secret_access_key:
            options.setdefault("AWS_SECRET_ACCESS_KEY", secrets.aws_secret_access_key)
        options.setdefault("AWS_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        endpoint = options.get("AWS_ENDPOINT_URL", "")
        if endpoint.startswith("http://"):
            options.setdefault("AWS_ALLOW_HTTP", "true")
        # Conditional PUT makes concurrent commits safe without a lock table.
        options.setdefault("AWS_CONDITIONAL_PUT", "etag")
        options.setdefault("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    return options


class Lake:
    """The lake: Delta tables addressed by registry name."""

    def __init__(
        self, root: str, storage_options: dict[str, str] | None = None, commit_retries: int = 8
    ) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.commit_retries = commit_retries
        self._current: set[str] = set()  # tables checked against the registry schema

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> Lake:
        """The lake the config points at."""
        lake = loaded.config.lake
        return cls(lake.root, lake_storage_options(loaded), lake.commit_retries)

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
            probe = root / ".st-write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise LakeError(f"lake root {root} is not writable: {exc.strerror}") from exc

    # --- reading ----------------------------------------------------------

    def exists(self, spec: TableSpec) -> bool:
        from deltalake import DeltaTable

        try:
            return DeltaTable.is_deltatable(self.uri(spec), storage_options=self.storage_options)
        except Exception as exc:  # the object store's own errors are not typed
            raise LakeError(f"cannot reach lake at {self.root}: {_first_line(exc)}") from exc

    def table(self, spec: TableSpec, version: int | None = None) -> DeltaTable:
        """Open a table, optionally at a version; TableNotFoundError if never written.

        Its pyarrow scans read through a native Arrow filesystem (see lake/scan.py).
        """
        from deltalake.exceptions import TableNotFoundError as DeltaNotFound

        from smarttrader_cli.lake.scan import LakeTable

        try:
            return LakeTable(self.uri(spec), version=version, storage_options=self.storage_options)
        except DeltaNotFound:
            raise TableNotFoundError(not_written(spec)) from None
        except Exception as exc:
            raise LakeError(f"cannot open {spec.name}: {_first_line(exc)}") from exc

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
        return dt.to_pyarrow_table(columns=list(columns) if columns else None)

    def version(self, spec: TableSpec) -> int | None:
        return self.table(spec).version() if self.exists(spec) else None

    def app_transaction_version(self, spec: TableSpec, app_id: str) -> int | None:
        """The last version recorded for an application transaction (stream offsets)."""
        if not self.exists(spec):
            return None
        return self.table(spec).transaction_version(app_id)

    def history(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first, each with its CommitMeta keys at the top level.

        delta-rs writes them there; delta-spark can only write one `userMetadata`
        string, which holds them as JSON (engines/spark_pnl.py), decoded here.
        """
        return [_with_user_metadata(entry) for entry in self.table(spec).history(limit)]

    # --- writing ----------------------------------------------------------

    def conform(self, spec: TableSpec, data: pa.Table) -> pa.Table:
        """Reorder and cast `data` to the registry schema; missing columns become null."""
        unknown = set(data.column_names) - set(spec.schema.names)
        if unknown:
            raise LakeError(f"{spec.name}: columns not in the schema: {sorted(unknown)}")
        arrays = []
        try:
            for f in spec.schema:
                if f.name in data.column_names:
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
        try:
            DeltaTable.create(
                self.uri(spec),
                schema=spec.schema,
                partition_by=list(spec.partition_by) or None,
                mode="ignore",
                name=spec.name,
                description=spec.description,
                storage_options=self.storage_options,
            )
        except Exception as exc:
            if not self.exists(spec):  # losing a creation race is fine
                raise LakeError(f"cannot create {spec.name}: {_first_line(exc)}") from exc

    def evolve(self, spec: TableSpec) -> tuple[list[str], int]:
        """Add the registry's columns a table lacks and backfill them: (added, rows filled)."""
        from deltalake import CommitProperties
        from deltalake.schema import Field

        dt = self.table(spec)
        have = set(dt.schema().to_arrow().names)
        missing = [f for f in spec.schema if f.name not in have]
        if missing:
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
                        f"cannot add columns to {spec.name}: {_first_line(exc)}"
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
        data: pa.Table,
        meta: CommitMeta,
        app_transactions: Sequence[tuple[str, int]] = (),
        snapshot: DeltaTable | None = None,
    ) -> int:
        """Append rows (and optional application transactions) in one commit; returns the version.

        With `snapshot` (a DeltaTable the caller read its state from), the commit is checked
        against everything committed since that snapshot: a concurrent commit of the same
        application transaction fails it (the cause is deltalake's CommitFailedError), and
        the snapshot is advanced to the new version on success.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        if snapshot is None:
            self.ensure_table(spec)
        rows = self.conform(spec, data)
        props = CommitProperties(
            custom_metadata=meta.as_metadata(rows.num_rows, "append"),
            max_commit_retries=self.commit_retries,
            app_transactions=[Transaction(app_id, version) for app_id, version in app_transactions]
            or None,
        )
        try:
            write_deltalake(
                snapshot if snapshot is not None else self.uri(spec),
                rows,
                mode="append",
                storage_options=None if snapshot is not None else self.storage_options,
                commit_properties=props,
            )
        except Exception as exc:
            raise LakeError(f"append to {spec.name} failed: {_first_line(exc)}") from exc
        if snapshot is not None:
            return snapshot.version()
        return self.table(spec).version()

    def overwrite(
        self, spec: TableSpec, data: pa.Table, meta: CommitMeta, predicate: str | None = None
    ) -> int:
        """Replace the table (or the rows matching `predicate`) in one commit."""
        from deltalake import CommitProperties, write_deltalake

        self.ensure_table(spec)
        rows = self.conform(spec, data)
        props = CommitProperties(
            custom_metadata=meta.as_metadata(rows.num_rows, "overwrite"),
            max_commit_retries=self.commit_retries,
        )
        try:
            write_deltalake(
                self.uri(spec),
                rows,
                mode="overwrite",
                predicate=predicate,
                storage_options=self.storage_options,
                commit_properties=props,
            )
        except Exception as exc:
            raise LakeError(f"overwrite of {spec.name} failed: {_first_line(exc)}") from exc
        return self.table(spec).version()

    def merge(
        self,
        spec: TableSpec,
        data: pa.Table,
        meta: CommitMeta,
        *,
        update_existing: bool = True,
        delete_predicate: str | None = None,
        retries: int | None = None,
    ) -> MergeResult:
        """Upsert on the natural key in one commit; a lost commit race is retried on fresh state.

        With `delete_predicate`, target rows matching it that are absent from `data` are
        deleted in the same commit (used to replace one wallet's rows exactly).
        """
        from deltalake import CommitProperties

        if not spec.keys:
            raise LakeError(f"{spec.name} has no natural key to merge on")
        self.ensure_table(spec)
        rows = _dedupe_last(self.conform(spec, data), spec.keys)
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in spec.keys)

        def execute(dt: DeltaTable) -> dict[str, Any]:
            props = CommitProperties(custom_metadata=meta.as_metadata(rows.num_rows, "merge"))
            merger = dt.merge(
                rows,
                predicate=predicate,
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
            version=self.table(spec).version(),
            inserted=int(metrics.get("num_target_rows_inserted", 0)),
            updated=int(metrics.get("num_target_rows_updated", 0)),
            deleted=int(metrics.get("num_target_rows_deleted", 0)),
        )

    def vacuum(self, spec: TableSpec, retention_hours: int, dry_run: bool) -> list[str]:
        """Remove files unreferenced for `retention_hours`; returns them (or would, dry run).

        Vacuum commits too, so a stage writing meanwhile can win the race: retried like merge.
        """
        return self._retrying_races(
            spec,
            "vacuum of",
            lambda dt: dt.vacuum(
                retention_hours=retention_hours,
                dry_run=dry_run,
                enforce_retention_duration=False,
            ),
        )

    def optimize(self, spec: TableSpec) -> dict[str, Any]:
        """Compact small files into larger ones; returns deltalake's metrics."""
        return self._retrying_races(spec, "optimize of", lambda dt: dt.optimize.compact())

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
                return action(self.table(spec))
            except CommitFailedError as exc:
                last_error = exc
                # Full jitter: writers that lost the same race must not retry in lockstep.
                time.sleep(random.uniform(0.0, min(4.0, 0.05 * 2**attempt)))
            except Exception as exc:
                raise LakeError(f"{what} {spec.name} failed: {_first_line(exc)}") from exc
        raise LakeError(
            f"{what} {spec.name} lost {retries + 1} commit races: {_first_line(last_error)}"
        )

    def delete(self, spec: TableSpec, predicate: str, meta: CommitMeta) -> int:
        """Delete matching rows in one commit; returns the number deleted."""
        from deltalake import CommitProperties

        if not self.exists(spec):
            return 0
        props = CommitProperties(
            custom_metadata=meta.as_metadata(0, "delete"), max_commit_retries=self.commit_retries
        )
        try:
            metrics = self.table(spec).delete(predicate, commit_properties=props)
        except Exception as exc:
            raise LakeError(f"delete from {spec.name} failed: {_first_line(exc)}") from exc
        return int(metrics.get("num_deleted_rows", 0))


@dataclass
class MergeResult:
    """What one merge commit did."""

    version: int
    inserted: int
    updated: int
    deleted: int = 0


def _with_user_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    raw = entry.get("userMetadata")
    if not isinstance(raw, str):
        return entry
    try:
        decoded = json.loads(raw)
    except ValueError:
        return entry
    if not isinstance(decoded, dict):
        return entry
    return {**{k: v for k, v in decoded.items() if k not in entry}, **entry}


def _dedupe_last(data: pa.Table, keys: Sequence[str]) -> pa.Table:
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


def _first_line(exc: BaseException | None) -> str:
    text = _ANSI.sub("", str(exc)).strip() if exc else "unknown error"
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    detail = _object_store_detail(text)
    return f"{first}: {detail}" if detail else first


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# S3 error codes whose cause an operator can fix, and what to check.
_S3_HINTS = {
    "SignatureDoesNotMatch": "wrong credentials, check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "InvalidAccessKeyId": "unknown access key, check AWS_ACCESS_KEY_ID",
    "AccessDenied": "access denied, check the credentials and the bucket policy",
    "NoSuchBucket": "the bucket does not exist",
}


def _object_store_detail(text: str) -> str:
    """The useful part of a multi-line object-store error (its first line is often generic)."""
    code = re.search(r"<Code>([^<]+)</Code>", text)
    if code:
        status = re.search(r"\b([45]\d\d) [A-Z][A-Za-z ]*", text)
        prefix = f"{status.group(0).strip()} " if status else ""
        return f"{prefix}{code.group(1)} ({_S3_HINTS.get(code.group(1), 'see the server log')})"
    if "Connection refused" in text or "tcp connect error" in text:
        endpoint = re.search(r"https?://[^/\s]+", text)
        where = f" at {endpoint.group(0)}" if endpoint else ""
        return f"connection refused{where} (is the S3 server running?)"
    if "dns error" in text or "failed to lookup address" in text:
        return "the endpoint's host name does not resolve"
    return ""
