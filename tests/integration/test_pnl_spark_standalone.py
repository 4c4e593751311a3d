"""Scale-out: `st silver pnl --engine spark` on a real standalone master and worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_PNL_WINDOWS
from tests.harness import write_config
from tests.pnl_oracle import oracle_windows
from tests.pnl_support import (
    QUOTES,
    assert_matches,
    assert_windows_match,
    random_history,
    rows_by_key,
    windows_by_key,
    write_trades,
)

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_silver_pnl_on_spark_standalone_equals_duckdb(tmp_path: Path, spark_standalone: str):
    assert spark_standalone.startswith("spark://127.0.0.1:")
    trades = random_history(seed=21, n=300)
    lake = Lake(str(tmp_path / "lake"))
    write_trades(lake, trades)
    cfg = write_config(tmp_path, spark__master=spark_standalone, spark__shuffle_partitions=2,
                       spark__executor_memory_mb=512, memory__min_free_mb=256)  # fmt: skip
    runner = CliRunner()
    duck = runner.invoke(app, ["--config", str(cfg), "silver", "pnl", "--full-refresh"])
    assert duck.exit_code == 0, duck.output
    duck_rows = rows_by_key(lake.read(WALLET_PNL))

    spark = runner.invoke(
        app, ["--config", str(cfg), "silver", "pnl", "--engine", "spark", "--full-refresh",
              "--format", "json"],
    )  # fmt: skip
    assert spark.exit_code == 0, spark.output
    assert '"engine": "spark"' in spark.output
    spark_rows = rows_by_key(lake.read(WALLET_PNL))
    assert {r["run_id"] for r in spark_rows.values()} != {r["run_id"] for r in duck_rows.values()}
    assert_matches(spark_rows, duck_rows, trades)
    as_of = max(t["block_unix_time"] for t in trades)
    want = oracle_windows(trades, (), QUOTES, as_of=as_of)
    spark_windows = windows_by_key(lake.read(WALLET_PNL_WINDOWS))
    assert_windows_match(spark_windows, want, trades)
    assert {r["run_id"] for r in spark_windows.values()} == {
        r["run_id"] for r in spark_rows.values()
    }
