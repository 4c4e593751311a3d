"""Lake layer: schema conformance, merge on natural keys, commit metadata, time travel, SQL."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.errors import LakeError, QueryError, TableNotFoundError
from smarttrader_cli.lake import CommitMeta, Lake, table_spec
from smarttrader_cli.lake.inspect import show_rows, table_history, table_summaries
from smarttrader_cli.lake.query import read_query
from smarttrader_cli.lake.tables import TOKEN_PRICES
from tests.harness import write_config

TRADES = table_spec("bronze.wallet_trades")
META = CommitMeta("run-1", "test.stage", "cfg123")


def trades(rows: list[tuple[str, int, float]]) -> pa.Table:
    return pa.table(
        {
            "tx_hash": [r[0] for r in rows],
            "ins_index": [0] * len(rows),
            "inner_ins_index": [0] * len(rows),
            "fill_id": [""] * len(rows),
            "wallet_address": ["W1"] * len(rows),
            "block_unix_time": [r[1] for r in rows],
            "from_amount": [r[2] for r in rows],
        }
    )


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_registry_rejects_unknown_tables() -> None:
    with pytest.raises(TableNotFoundError, match=r"known tables: bronze\.api_rejects"):
        table_spec("bronze.nope")


def test_reading_an_unwritten_table_gives_the_empty_schema(lake: Lake) -> None:
    table = lake.read(TRADES)
    assert table.num_rows == 0
    assert table.schema == TRADES.schema


def test_merge_is_idempotent_and_updates_on_the_natural_key(lake: Lake) -> None:
    first = lake.merge(TRADES, trades([("a", 1, 1.0), ("b", 2, 2.0)]), META)
    assert (first.inserted, first.updated) == (2, 0)
    again = lake.merge(TRADES, trades([("a", 1, 1.0), ("b", 2, 2.0)]), META)
    assert again.inserted == 0
    changed = lake.merge(TRADES, trades([("a", 1, 5.0), ("c", 3, 3.0), ("c", 3, 4.0)]), META)
    assert (changed.inserted, changed.updated) == (1, 1)
    rows = {r["tx_hash"]: r["from_amount"] for r in lake.read(TRADES).to_pylist()}
    assert rows == {"a": 5.0, "b": 2.0, "c": 4.0}  # last duplicate in a batch wins


def test_insert_only_merge_keeps_existing_rows(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0)]), META)
    lake.merge(TRADES, trades([("a", 1, 9.0)]), META, update_existing=False)
    assert lake.read(TRADES).column("from_amount").to_pylist() == [1.0]


def test_merge_with_delete_predicate_replaces_a_wallets_rows(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0), ("b", 2, 2.0)]), META)
    lake.merge(TRADES, trades([("b", 2, 7.0)]), META, delete_predicate="t.wallet_address = 'W1'")
    assert lake.read(TRADES).to_pylist()[0]["tx_hash"] == "b"
    assert lake.read(TRADES).num_rows == 1


def test_a_failing_delete_is_a_lake_error_and_changes_nothing(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0), ("b", 2, 2.0)]), META)
    with pytest.raises(LakeError, match=r"delete from bronze\.wallet_trades failed"):
        lake.delete(TRADES, "no_such_column = 1", META)
    assert lake.read(TRADES).num_rows == 2
    assert lake.delete(TRADES, "tx_hash = 'a'", META) == 1


def test_every_commit_carries_run_metadata(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0)]), META)
    history = table_history(lake, TRADES)
    assert history[0]["run_id"] == "run-1"
    assert history[0]["stage"] == "test.stage"
    assert history[0]["config_hash"] == "cfg123"
    assert history[0]["rows"] == "1"


def test_history_reads_the_metadata_of_spark_commits_too(lake: Lake) -> None:
    from deltalake import CommitProperties, write_deltalake

    lake.merge(TRADES, trades([("a", 1, 1.0)]), META)
    spark_meta = CommitMeta("run-2", "silver.pnl", "cfg456").as_metadata(1, "merge")
    # delta-spark's form: one userMetadata string holding the keys as JSON
    write_deltalake(
        lake.uri(TRADES),
        lake.conform(TRADES, trades([("b", 2, 2.0)])),
        mode="append",
        commit_properties=CommitProperties(
            custom_metadata={"userMetadata": json.dumps(spark_meta)}
        ),
    )
    newest, older = table_history(lake, TRADES)[:2]
    assert (newest["stage"], newest["run_id"], newest["config_hash"]) == (
        "silver.pnl", "run-2", "cfg456",
    )  # fmt: skip
    assert newest["rows"] == "1"
    assert (older["stage"], older["run_id"]) == ("test.stage", "run-1")


def test_rows_that_do_not_fit_the_schema_are_refused_and_nothing_is_written(lake: Lake) -> None:
    with pytest.raises(LakeError, match="columns not in the schema"):
        lake.append(TRADES, trades([("a", 1, 1.0)]).append_column("extra", pa.array([1])), META)
    good = trades([("a", 1, 1.0)])
    bad = good.set_column(
        good.schema.get_field_index("block_unix_time"), "block_unix_time", pa.array(["soon"])
    )
    with pytest.raises(LakeError, match="rows do not fit the schema"):
        lake.append(TRADES, bad, META)
    assert lake.read(TRADES).num_rows == 0


def test_time_travel_by_version_and_timestamp(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0)]), META)  # v1 (v0 creates the table)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    lake.merge(TRADES, trades([("b", 2, 2.0)]), META)  # v2
    assert len(show_rows(lake, TRADES, version=1)) == 1
    assert len(show_rows(lake, TRADES, as_of=between)) == 1
    assert len(show_rows(lake, TRADES)) == 2


def test_app_transactions_are_recorded_with_the_data(lake: Lake) -> None:
    events = table_spec("bronze.webhook_events")
    assert lake.app_transaction_version(events, "g-0") is None
    lake.append(events, pa.table({"signature": ["s1"]}), META, app_transactions=[("g-0", 41)])
    assert lake.app_transaction_version(events, "g-0") == 41


def test_sql_over_layer_table_names(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.5), ("b", 2, 2.5)]), META)
    columns, rows = read_query(lake, "SELECT sum(from_amount) AS s FROM bronze.wallet_trades")
    assert columns == ["s"] and rows == [(4.0,)]
    with pytest.raises(QueryError, match="query failed"):
        read_query(lake, "SELECT * FROM silver.wallet_pnl")  # not written yet


def test_summaries_count_rows_and_versions(lake: Lake) -> None:
    lake.merge(TRADES, trades([("a", 1, 1.0), ("b", 2, 2.0)]), META)
    summary = {r["table"]: r for r in table_summaries(lake)}
    assert summary["bronze.wallet_trades"]["rows"] == 2
    assert summary["bronze.wallet_trades"]["version"] == 1
    assert summary["silver.wallet_pnl"]["version"] is None


def test_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LakeError, match="not writable"):
        Lake(str(blocker / "lake")).merge(TRADES, trades([("a", 1, 1.0)]), META)


def cli(tmp_path: Path, *args: str):
    config = write_config(tmp_path)
    return CliRunner().invoke(app, ["--config", str(config), *args])


def test_cli_query_json_and_errors(tmp_path: Path) -> None:
    Lake(str(tmp_path / "lake")).merge(TRADES, trades([("a", 1, 1.0)]), META)
    ok = cli(
        tmp_path, "lake", "query", "SELECT tx_hash FROM bronze.wallet_trades", "--format", "json"
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout) == [{"tx_hash": "a"}]
    bad = cli(tmp_path, "lake", "query", "SELEC nonsense")
    assert bad.exit_code == 1
    assert bad.output.startswith("st: error: query failed: Parser Error")
    missing = cli(tmp_path, "lake", "show", "silver.wallet_pnl")
    assert missing.exit_code == 2 and "has not been written yet" in missing.output
    unknown = cli(tmp_path, "lake", "history", "gold.nope")
    assert unknown.exit_code == 2 and "unknown table 'gold.nope'" in unknown.output


def test_cli_show_history_tables_vacuum_optimize(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.merge(TRADES, trades([("a", 1, 1.0)]), META)
    lake.merge(TRADES, trades([("b", 2, 2.0)]), META)
    shown = cli(
        tmp_path, "lake", "show", "bronze.wallet_trades", "--version", "1", "--format", "json"
    )
    assert [r["tx_hash"] for r in json.loads(shown.stdout)] == ["a"]
    history = cli(tmp_path, "lake", "history", "bronze.wallet_trades", "--format", "json")
    assert [h["version"] for h in json.loads(history.stdout)] == [2, 1, 0]
    assert cli(tmp_path, "lake", "tables").exit_code == 0
    assert cli(tmp_path, "lake", "optimize", "bronze.wallet_trades").exit_code == 0
    vac = cli(tmp_path, "lake", "vacuum", "--retention-hours", "0", "--dry-run")
    assert vac.exit_code == 0, vac.output
    assert lake.read(TRADES).num_rows == 2


def test_a_table_removed_and_written_anew_is_not_read_from_an_earlier_open(
    tmp_path: Path,
) -> None:
    lake = Lake(str(tmp_path))
    meta = CommitMeta("run", "test", "cfg")
    for i in range(3):
        lake.append(TOKEN_PRICES, pa.table({"token_address": ["a"], "unix_time": [i]}), meta)
    assert lake.read(TOKEN_PRICES).num_rows == 3  # the table is kept for the next open
    shutil.rmtree(lake.uri(TOKEN_PRICES))
    other = Lake(str(tmp_path))  # another process writes the table anew
    other.append(TOKEN_PRICES, pa.table({"token_address": ["b"], "unix_time": [9]}), meta)
    assert lake.read(TOKEN_PRICES).column("token_address").to_pylist() == ["b"]
    assert lake.version(TOKEN_PRICES) == other.version(TOKEN_PRICES)
