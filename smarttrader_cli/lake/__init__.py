"""The lake: Delta tables, their registry, and DuckDB access."""

from smarttrader_cli.lake.store import CommitMeta, Lake, MergeResult
from smarttrader_cli.lake.tables import TABLES, TableSpec, table_spec

__all__ = ["TABLES", "CommitMeta", "Lake", "MergeResult", "TableSpec", "table_spec"]
