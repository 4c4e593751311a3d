"""`st lake query` only reads: DuckDB opens no file itself, writes are refused, reads unchanged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.lake import CommitMeta, Lake, table_spec
from smarttrader_cli.lake.tables import TABLES, TableSpec
from tests.harness import write_config

META = CommitMeta("run-1", "test.stage", "cfg123")
SMART_WALLETS = table_spec("gold.smart_wallets")


def sample(spec: TableSpec, n: int = 3) -> pa.Table:
    """`n` rows with a value of the column's type in every column, and one of nulls."""

    def value(f: pa.Field, i: int) -> Any:
        if pa.types.is_string(f.type):
            return f"{f.name}-{i}"
        if pa.types.is_boolean(f.type):
            return i % 2 == 0
        if pa.types.is_integer(f.type):
            return i + 1
        if pa.types.is_floating(f.type):
            return 1.25 * i + 0.5
        if pa.types.is_timestamp(f.type):
            return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i, microseconds=7)
        if pa.types.is_date32(f.type):
            return date(2025, 1, 1) + timedelta(days=i)
        raise AssertionError(f"no sample value for {f.type}")

    columns = {}
    for f in spec.schema:
        values = [value(f, i) for i in range(n)]
        if f.nullable:
            values[-1] = None
        columns[f.name] = pa.array(values, f.type)
    return pa.table(columns, schema=spec.schema)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.overwrite(SMART_WALLETS, sample(SMART_WALLETS), META)
    return lake


def query(lake: Lake, sql: str) -> Any:
    config = write_config(Path(lake.root).parent)
    return CliRunner().invoke(app, ["--config", str(config), "lake", "query", sql, "-f", "json"])


def forged_commit(lake: Lake) -> str:
    """COPY that writes a Delta commit removing every file of gold.smart_wallets."""
    log = f"{lake.uri(SMART_WALLETS)}/_delta_log/{lake.version(SMART_WALLETS) + 1:020d}.json"
    return (
        "COPY (SELECT {'path': parse_filename(data_file), 'dataChange': true, "
        "'deletionTimestamp': 0} AS remove "
        f"FROM delta_list_files('{lake.uri(SMART_WALLETS)}')) TO '{log}' (FORMAT json)"
    )


def test_a_forged_delta_commit_cannot_empty_gold(lake: Lake) -> None:
    version = lake.version(SMART_WALLETS)
    result = query(lake, forged_commit(lake))
    assert result.exit_code == 1
    assert "only reads: COPY statements are refused" in result.output
    assert lake.version(SMART_WALLETS) == version
    assert lake.read(SMART_WALLETS).num_rows == 3


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("ATTACH '{root}/x.duckdb' AS x", "ATTACH"),
        ("INSTALL spatial", "LOAD"),
        ("LOAD '{root}/x.duckdb_extension'", "LOAD"),
        ("CREATE TABLE t AS SELECT * FROM gold.smart_wallets", "CREATE"),
        ("CREATE OR REPLACE VIEW gold.smart_wallets AS SELECT 1 AS rank", "CREATE"),
        ("DROP VIEW gold.smart_wallets", "DROP"),
        ("INSERT INTO gold.smart_wallets SELECT * FROM gold.smart_wallets", "INSERT"),
        ("UPDATE gold.smart_wallets SET score = 0", "UPDATE"),
        ("DELETE FROM gold.smart_wallets", "DELETE"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA memory_limit = '1GB'", "SET"),
        ("CALL checkpoint()", "CALL"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/x.csv'", "EXPLAIN"),
        ("EXPORT DATABASE '{root}/export'", "EXPORT"),
        ("SELECT 1; COPY (SELECT 1) TO '{root}/x.csv'", "COPY"),
    ],
)
def test_statements_that_write_are_refused(lake: Lake, sql: str, kind: str) -> None:
    before = sorted(p.relative_to(lake.root) for p in Path(lake.root).rglob("*"))
    result = query(lake, sql.format(root=lake.root))
    assert result.exit_code == 1, result.output
    assert f"st: error: st lake query only reads: {kind} statements are refused" in result.output
    assert sorted(p.relative_to(lake.root) for p in Path(lake.root).rglob("*")) == before


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM read_text('{secret}')", "Permission Error"),
        ("SELECT * FROM read_csv('{secret}')", "Permission Error"),
        ("SELECT * FROM glob('{root}/*')", "Permission Error"),
        ("SELECT * FROM read_parquet('{root}/gold/smart_wallets/*.parquet')", "Permission Error"),
        ("SELECT * FROM read_json('{root}/gold/smart_wallets/_delta_log/*.json')", "Permission"),
        # the delta extension's copy_dir() writes; it is not even loaded
        ("SELECT * FROM copy_dir('{root}/gold/smart_wallets', '{root}/gold/copy')", "Catalog"),
    ],
)
def test_no_file_is_opened_by_duckdb_itself(
    lake: Lake, tmp_path: Path, sql: str, error: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    result = query(lake, sql.format(root=lake.root, secret=secret))
    assert result.exit_code == 1
    assert f"st: error: query failed: {error}" in result.output, result.output
    assert "s3cr3t" not in result.output
    assert not (Path(lake.root) / "gold" / "copy").exists()


def test_delta_scan_of_other_paths_is_not_available(lake: Lake, tmp_path: Path) -> None:
    other = Lake(str(tmp_path / "other"))
    other.overwrite(SMART_WALLETS, sample(SMART_WALLETS), META)
    result = query(lake, f"SELECT count(*) FROM delta_scan('{other.uri(SMART_WALLETS)}')")
    assert result.exit_code == 1
    assert "query failed" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "WITH w AS (SELECT * FROM gold.smart_wallets) SELECT count(*) AS n FROM w",
        "FROM gold.smart_wallets SELECT count(*) AS n",
        "SELECT 0 AS n; SELECT count(*) AS n FROM gold.smart_wallets",
    ],
)
def test_reads_in_any_select_form_run(lake: Lake, sql: str) -> None:
    result = query(lake, sql)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 3}]


def test_filters_on_every_column_type_run(lake: Lake) -> None:
    """DuckDB pushes WHERE into the Arrow scan with a string_view constant, and a stage's
    merge writes its string columns to Parquet as string_view too (as overwrite does not)."""
    lake.merge(SMART_WALLETS, sample(SMART_WALLETS), META)
    ranks = sample(SMART_WALLETS).column("rank").to_pylist()
    for sql, n in (
        (
            "SELECT count(*) AS n FROM gold.smart_wallets WHERE wallet_address = 'wallet_address-1'",
            1,
        ),
        (
            "SELECT count(*) AS n FROM gold.smart_wallets WHERE wallet_address IN ('x', 'wallet_address-2')",
            1,
        ),
        ("SELECT count(*) AS n FROM gold.smart_wallets WHERE wallet_address LIKE 'wallet%'", 3),
        (
            "SELECT count(*) AS n FROM gold.smart_wallets WHERE rank >= 2",
            sum(1 for r in ranks if r is not None and r >= 2),
        ),
    ):
        result = query(lake, sql)
        assert result.exit_code == 0, (sql, result.output)
        assert json.loads(result.stdout) == [{"n": n}], sql


def test_describe_show_and_summarize_run(lake: Lake) -> None:
    for sql in ("DESCRIBE gold.smart_wallets", "SHOW TABLES", "SUMMARIZE gold.smart_wallets"):
        result = query(lake, sql)
        assert result.exit_code == 0, (sql, result.output)


def test_every_table_reads_exactly_as_through_delta_scan(tmp_path: Path) -> None:
    from smarttrader_cli.lake.query import connect, read_query

    lake = Lake(str(tmp_path / "lake"))
    for spec in TABLES.values():
        lake.overwrite(spec, sample(spec), META)
    direct = connect(lake)  # the delta_scan views every stage reads through
    try:
        for spec in TABLES.values():
            sql = f"SELECT * FROM {spec.name} ORDER BY ALL"
            cursor = direct.execute(sql)
            expected = ([d[0] for d in cursor.description], cursor.fetchall())
            assert read_query(lake, sql) == expected, spec.name
            types = f"SELECT column_name, column_type FROM (DESCRIBE {spec.name})"
            assert read_query(lake, types)[1] == direct.execute(types).fetchall(), spec.name
    finally:
        direct.close()
    rows = json.loads(query(lake, "SELECT * FROM gold.smart_wallets ORDER BY rank").stdout)
    assert rows[0]["ranked_at"] == "2025-01-01T00:00:00.000007+00:00"


def test_duckdb_itself_refuses_files_and_setting_changes(lake: Lake) -> None:
    import duckdb

    from smarttrader_cli.lake.query import connect_read_only

    con = connect_read_only(lake)
    try:
        assert con.execute("SELECT count(*) FROM gold.smart_wallets").fetchone() == (3,)
        target = f"{lake.uri(SMART_WALLETS)}/_delta_log/x.json"
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT json)")
        for setting in ("enable_external_access = true", "lock_configuration = false"):
            with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
                con.execute(f"SET {setting}")
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            con.execute(f"SET allowed_directories = ['{lake.root}']")
    finally:
        con.close()
    assert not Path(target).exists()
