"""Arrow scans of lake tables through native Arrow filesystems, never a Python one.

deltalake's `DeltaTable.to_pyarrow_dataset()` (and so `to_pyarrow_table()`) reads, unless
told otherwise, through `pyarrow.fs.PyFileSystem(DeltaStorageHandler)`: a filesystem
implemented in Python, so every range Arrow reads is a Python `bytes` object held by a
C++ `PyBuffer`. Arrow's dataset scanner finishes tearing down its exec plan (readers,
pre-buffer caches, those buffers) on one of its thread-pool workers *after* `to_table()`
has returned, and freeing a `PyBuffer` takes the GIL. A command that exits right after a
read (`st runs show <unknown id>`: read, UsageError, exit 2) can therefore be in
interpreter finalization while a worker still frees buffers; CPython 3.11 ends a thread
that asks for the GIL during finalization with `pthread_exit`, whose forced unwind runs
into a `noexcept` C++ destructor: `terminate called without an active exception`,
SIGABRT, exit 134 instead of the command's own exit code.

Reading through a native Arrow filesystem (local disk or S3) keeps Python objects out of
Arrow's threads altogether: once a read returns, nothing left on them needs the GIL.
`LakeTable` is the `DeltaTable` that `Lake.table()` hands out; its pyarrow scans default
to such a filesystem, so every caller of `Lake.read()` or `lake.table(...).to_pyarrow_dataset()`
gets it without passing anything.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow.fs as pa_fs
from deltalake import DeltaTable

if TYPE_CHECKING:
    import pyarrow
    import pyarrow.dataset
    from deltalake.table import FilePruningPredicateType, FilterType

log = logging.getLogger("st.lake")

_TRUE = {"1", "true", "yes", "on"}


def table_filesystem(uri: str, storage_options: dict[str, str]) -> pa_fs.FileSystem | None:
    """A native Arrow filesystem rooted at the table `uri` (None: a scheme we cannot map)."""
    parsed = urlparse(uri)
    if "://" not in uri or parsed.scheme == "file":
        path = parsed.path if parsed.scheme == "file" else uri
        return pa_fs.SubTreeFileSystem(str(Path(path).resolve()), pa_fs.LocalFileSystem())
    if parsed.scheme in ("s3", "s3a"):
        try:
            s3 = _s3_filesystem(tuple(sorted(s3_filesystem_options(storage_options).items())))
        except Exception as exc:  # pyarrow built without S3, or options it refuses
            log.debug("no native S3 filesystem for %s (%s); deltalake's own is used", uri, exc)
            return None
        return pa_fs.SubTreeFileSystem(f"{parsed.netloc}{parsed.path}".rstrip("/"), s3)
    return None


@functools.cache
def _s3_filesystem(options: tuple[tuple[str, Any], ...]) -> pa_fs.S3FileSystem:
    """One S3 client per set of options for the whole process."""
    return pa_fs.S3FileSystem(**dict(options))


def s3_filesystem_options(storage_options: dict[str, str]) -> dict[str, Any]:
    """`pyarrow.fs.S3FileSystem` arguments from deltalake-style storage options.

    The same keys the DuckDB secret and the Spark s3a settings are built from; what the
    options leave out comes from the environment, as deltalake takes it from there too.
    """
    opts = {k.upper(): v for k, v in storage_options.items()}

    def pick(*names: str) -> str | None:
        for name in names:
            value = opts.get(name) or os.environ.get(name)
            if value:
                return value
        return None

    kwargs: dict[str, Any] = {}
    access_key = pick("AWS_ACCESS_KEY_ID")
    secret_key = pick("AWS_SECRET_ACCESS_KEY")
    if access_key and secret_key:
        kwargs.update(access_key=access_key, secret_key=secret_key)
        token = pick("AWS_SESSION_TOKEN", "AWS_TOKEN")
        if token:
            kwargs["session_token"] = token
    elif (pick("AWS_SKIP_SIGNATURE") or "").lower() in _TRUE:
        kwargs["anonymous"] = True
    region = pick("AWS_REGION", "AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    endpoint = pick("AWS_ENDPOINT_URL", "AWS_ENDPOINT")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs["endpoint_override"] = f"{parsed.netloc}{parsed.path}".rstrip("/")
        kwargs["scheme"] = parsed.scheme or "https"
    if (pick("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") or "").lower() in _TRUE:
        kwargs["force_virtual_addressing"] = True
    return kwargs


class LakeTable(DeltaTable):
    """A `DeltaTable` whose pyarrow scans read through a native Arrow filesystem."""

    def __init__(
        self,
        table_uri: str,
        version: int | None = None,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        super().__init__(table_uri, version=version, storage_options=storage_options)
        self._lake_uri = table_uri

    def to_pyarrow_dataset(
        self,
        partitions: FilterType | None = None,
        filesystem: str | pa_fs.FileSystem | None = None,
        parquet_read_options: pyarrow.dataset.ParquetReadOptions | None = None,
        schema: pyarrow.Schema | None = None,
        as_large_types: bool = False,
        file_pruning_predicate: FilePruningPredicateType | None = None,
    ) -> pyarrow.dataset.Dataset:
        """deltalake's dataset, reading through the table's native filesystem by default."""
        if filesystem is None:
            filesystem = table_filesystem(self._lake_uri, self._storage_options or {})
        return super().to_pyarrow_dataset(
            partitions=partitions,
            filesystem=filesystem,
            parquet_read_options=parquet_read_options,
            schema=schema,
            as_large_types=as_large_types,
            file_pruning_predicate=file_pruning_predicate,
        )
