"""lake/sql.py: literals and predicates that DuckDB and Delta read as meant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from smarttrader_cli.lake import CommitMeta, Lake, table_spec
from smarttrader_cli.lake.sql import between, in_list, literal, quote

META = CommitMeta("run-1", "test.stage", "cfg123")


def test_quote_doubles_single_quotes() -> None:
    assert quote("it's") == "'it''s'"
    text = "a'b''c"
    assert duckdb.sql("SELECT " + quote(text)).fetchone() == (text,)


def test_literals_by_type() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert literal(at) == "'2026-01-02T03:04:05+00:00'"
    assert (literal(7), literal(1.5), literal("x")) == ("7", "1.5", "'x'")
    with pytest.raises(TypeError):
        literal(True)


def test_in_list_and_its_empty_cases() -> None:
    assert in_list("w", ["a", "b'c"]) == "w IN ('a', 'b''c')"
    assert in_list("w", ["a"], negate=True) == "w NOT IN ('a')"
    assert in_list("w", []) == "FALSE"
    assert in_list("w", [], negate=True) == "TRUE"


def test_between_bounds() -> None:
    assert between("t", 1, 5) == "t > 1 AND t < 5"
    assert between("t", after=1, inclusive=True) == "t >= 1"
    assert between("t", before=5, inclusive=True) == "t <= 5"
    assert between("t") == "TRUE"


def test_predicates_select_the_same_rows_in_duckdb_and_delta(tmp_path: Path) -> None:
    spec = table_spec("bronze.wallet_fetches")
    lake = Lake(str(tmp_path / "lake"))
    wallets = ["a", "o'neil", "c", "d"]
    rows = pa.table({"wallet_address": wallets, "window_after": [1, 2, 3, 4]})
    lake.overwrite(spec, rows, META)
    predicate = in_list("wallet_address", ["o'neil", "d"]) + " AND " + between("window_after", 1, 4)
    con = duckdb.connect()
    con.register("t", lake.read(spec))
    found = con.execute(f"SELECT wallet_address FROM t WHERE {predicate}").fetchall()
    assert found == [("o'neil",)]
    assert lake.delete(spec, predicate, META) == 1
    assert sorted(lake.read(spec).column("wallet_address").to_pylist()) == ["a", "c", "d"]
