"""DuckDB over the lake: Delta tables as `layer.table` views, extensions loaded offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from smarttrader_cli.errors import LakeError, QueryError, first_line
from smarttrader_cli.lake.sql import quote
from smarttrader_cli.lake.tables import TABLES

if TYPE_CHECKING:
    import duckdb

    from smarttrader_cli.lake.store import Lake

DUCKDB_VERSION = "v1.5.5"


def extension_path(name: str) -> Path:
    """The extension file shipped in the `duckdb-extension-<name>` wheel."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise LakeError(f"DuckDB extension {name!r} is not installed (duckdb-extension-{name})")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / DUCKDB_VERSION / f"{name}.duckdb_extension"
    if not path.is_file():
        raise LakeError(f"DuckDB extension file missing: {path}")
    return path


def duckdb_config(
    memory_limit_mb: int | None = None, threads: int | None = None
) -> dict[str, str | bool | int | float | list[str]]:
    """Connection settings that keep DuckDB offline (and optionally bounded)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if memory_limit_mb:
        config["memory_limit"] = f"{memory_limit_mb}MB"
    if threads:
        config["threads"] = str(threads)
    return config


def connect(
    lake: Lake,
    *,
    memory_limit_mb: int | None = None,
    threads: int | None = None,
    database: str = ":memory:",
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where every written lake table is a view named `layer.table`."""
    import duckdb

    con = duckdb.connect(database, config=duckdb_config(memory_limit_mb, threads))
    load_extensions(con, remote=lake.is_remote)
    if lake.is_remote:
        con.execute(s3_secret_sql(lake.storage_options))
    attach_views(con, lake)
    return con


def load_extensions(con: duckdb.DuckDBPyConnection, remote: bool) -> None:
    """Load the delta (and for S3, httpfs) extensions from their wheels."""
    names = ["httpfs", "delta"] if remote else ["delta"]
    for name in names:
        con.execute(f"LOAD {quote(str(extension_path(name)))}")


def attach_views(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    """Create `layer.table` views over the tables that exist; returns their names."""
    made = []
    for spec in TABLES.values():
        if not lake.exists(spec):
            continue
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.layer}")
        uri = quote(lake.uri(spec))
        con.execute(f"CREATE OR REPLACE VIEW {spec.name} AS SELECT * FROM delta_scan({uri})")
        made.append(spec.name)
    return made


def connect_read_only(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads the lake's tables as `layer.table` and opens no file.

    delta_scan views read their files when a query runs, so they would need the lake in
    `allowed_directories`, and DuckDB writes there as freely as it reads (COPY TO,
    copy_dir(), enable_profiling(save_location=...)): one COPY can forge a Delta commit.
    Here deltalake does the reading, each table an Arrow dataset of its current snapshot
    (scanned lazily, filters and columns pushed down), so DuckDB itself needs no
    filesystem at all: external access goes off and the configuration is locked before
    any user SQL runs.
    """
    import duckdb

    con = duckdb.connect(":memory:", config=duckdb_config())
    try:
        for spec in TABLES.values():
            if not lake.exists(spec):
                continue
            dataset = f"st_lake_{spec.layer}_{spec.short_name}"
            con.register(dataset, _viewed(lake.table(spec)))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {spec.layer}")
            con.execute(f"CREATE VIEW {spec.name} AS SELECT * FROM {dataset}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _viewed(table: Any) -> Any:
    """The table's Arrow dataset with string columns read as string_view.

    DuckDB pushes a WHERE on a VARCHAR into the scan as a string_view constant, and Arrow has
    no kernel comparing string with string_view: `WHERE wallet_address = '...'` would fail.
    """
    import pyarrow as pa

    dataset = table.to_pyarrow_dataset()
    schema = pa.schema(
        [f.with_type(pa.string_view()) if pa.types.is_string(f.type) else f for f in dataset.schema]
    )
    return table.to_pyarrow_dataset(schema=schema)


def read_query(lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run read-only SQL over the lake's tables: (columns, rows) of the last statement.

    Only SELECT statements run (WITH, FROM-first, VALUES, DESCRIBE, SHOW, SUMMARIZE and
    PRAGMA reads parse as SELECT); anything else is refused before any of it runs.
    QueryError names the refused statement or carries DuckDB's message.
    """
    import duckdb

    con = connect_read_only(lake)
    try:
        # Parsed on the locked connection: IMPORT DATABASE reads files while parsing.
        statements = con.extract_statements(sql)
        for statement in statements:
            if statement.type != duckdb.StatementType.SELECT:
                raise QueryError(
                    f"st lake query only reads: {statement.type.name} statements are refused "
                    "(SELECT, WITH, DESCRIBE, SHOW and SUMMARIZE run)"
                )
        if not statements:
            raise QueryError("query failed: no SQL statement given")
        for statement in statements:
            cursor = con.execute(statement)
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], cursor.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {first_line(exc)}") from exc
    finally:
        con.close()


def s3_secret_sql(options: dict[str, str]) -> str:
    """CREATE SECRET for DuckDB from deltalake-style storage options."""
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    parsed = urlparse(endpoint) if endpoint else None
    parts = [
        "TYPE s3",
        "PROVIDER config",
        f"KEY_ID {quote(options.get('AWS_ACCESS_KEY_ID', ''))}",
        f"SECRET {quote(options.get('AWS_SECRET_ACCESS_KEY', ''))}",
        f"REGION {quote(options.get('AWS_REGION', 'us-east-1'))}",
    ]
    if parsed and parsed.netloc:
        # DuckDB wants host:port without the scheme, or it builds http://http://...
        parts += [
            f"ENDPOINT {quote(parsed.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}",
        ]
    return f"CREATE OR REPLACE SECRET st_lake ({', '.join(parts)})"
