"""The Spark engine writes the same silver.wallet_pnl and silver.wallet_pnl_windows as the
DuckDB engine (real Spark + Delta)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.inspect import table_history
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_PNL_WINDOWS
from smarttrader_cli.stages import silver_pnl
from smarttrader_cli.stages.contract import StageContext
from tests.harness import write_config
from tests.pnl_oracle import oracle_pnl, oracle_windows
from tests.pnl_support import (
    FETCHED,
    QUOTES,
    T0,
    assert_matches,
    assert_windows_match,
    break_even_after_an_expensive_lot,
    buy,
    random_history,
    rows_by_key,
    sell,
    sell_ending_on_a_lot_boundary,
    windows_by_key,
    write_metrics,
    write_trades,
)

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def run_wallet_pnl(app: AppContext, **args: Any) -> SimpleNamespace:
    """The stage's run id and details as attributes."""
    result = silver_pnl.run(StageContext.of(app.loaded, app.lake), **args)
    return SimpleNamespace(run_id=result.run_id, **result.details)


def app_for(tmp_path: Path, master: str = "local[2]", **dotted: Any) -> AppContext:
    """An AppContext on a lake under tmp_path with Spark at `master`."""
    cfg = write_config(tmp_path, spark__master=master, spark__shuffle_partitions=2,
                       memory__min_free_mb=256, **dotted)  # fmt: skip
    return AppContext(config_path=cfg)


def test_spark_engine_equals_duckdb_engine_and_oracle(tmp_path: Path):
    # Two wallets carry the property test's counter-examples for the DuckDB engine: a
    # break-even sell must not become a win through float noise in cumulative costs.
    edge_cases = break_even_after_an_expensive_lot("E1") + sell_ending_on_a_lot_boundary("E2")
    # About 35 days of history, so the 1d, 7d and 30d windows each hold a different part.
    trades = random_history(seed=7, n=400, t_step=15_000) + edge_cases
    app = app_for(tmp_path)
    lake = Lake(str(tmp_path / "lake"))
    write_trades(lake, trades)
    write_metrics(lake, {"Tok0": 3.0, "Tok1": 0.5})

    duck = run_wallet_pnl(app, engine="duckdb", full_refresh=True)
    duck_rows = rows_by_key(lake.read(WALLET_PNL))
    duck_windows = windows_by_key(lake.read(WALLET_PNL_WINDOWS))
    spark = run_wallet_pnl(app, engine="spark", full_refresh=True)
    spark_rows = rows_by_key(lake.read(WALLET_PNL))
    spark_windows = windows_by_key(lake.read(WALLET_PNL_WINDOWS))

    assert (spark.wallets, spark.rows, spark.legs, spark.unpriced_legs) == (
        duck.wallets, duck.rows, duck.legs, duck.unpriced_legs,
    )  # fmt: skip
    assert spark.rejected_trades == duck.rejected_trades > 0
    assert spark.duplicate_trades == duck.duplicate_trades > 0
    assert_matches(spark_rows, duck_rows, trades)
    assert spark_rows[("E1", "T")]["winning_sells"] == 0
    assert spark_rows[("E2", "TokC")]["winning_sells"] == 0
    assert {r["run_id"] for r in spark_rows.values()} == {spark.run_id}
    snap = [{"token_address": "Tok0", "snapshot_at": FETCHED, "price": 3.0},
            {"token_address": "Tok1", "snapshot_at": FETCHED, "price": 0.5}]  # fmt: skip
    assert_matches(spark_rows, oracle_pnl(trades, snap, QUOTES), trades)

    # The windows end at the latest trade; the history spans them, so each holds some legs.
    as_of = max(t["block_unix_time"] for t in trades)
    want = oracle_windows(trades, snap, QUOTES, as_of=as_of)
    assert len(spark_windows) == len(duck_windows) == 4 * len(spark_rows)
    capital = {k: dict(r, _capital=want[k]["_capital"]) for k, r in duck_windows.items()}
    assert_windows_match(spark_windows, capital, trades)
    assert_windows_match(spark_windows, want, trades)
    sells = {n: sum(r["sell_count"] for k, r in spark_windows.items() if k[2] == n)
             for n in ("1d", "7d", "30d", "all")}  # fmt: skip
    assert 0 < sells["1d"] < sells["7d"] < sells["30d"] < sells["all"], sells
    assert {r["run_id"] for r in spark_windows.values()} == {spark.run_id}

    # DuckDB's incremental state predates Spark's rows: DuckDB notices and rebuilds.
    again = run_wallet_pnl(app, engine="duckdb")
    assert again.mode == "full"
    assert_windows_match(windows_by_key(lake.read(WALLET_PNL_WINDOWS)), want, trades)


def test_spark_incremental_merge_replaces_only_changed_wallets(tmp_path: Path):
    # Z closed a position in a token no one else trades, long before the windows' edges: new
    # trades elsewhere move the windows' end, but no trade of Z crosses an edge.
    windows = ("1h", "all", "12h")
    quiet = [buy("Z", "z1", T0, "TokZ", 10.0, 1.0), sell("Z", "z2", T0 + 60, "TokZ", 10.0, 2.0)]
    trades = random_history(seed=11, n=200) + quiet
    app = app_for(
        tmp_path,
        pnl__windows=list(windows),
        # the tiers' window rules name 7d and 30d, which this list does not have
        gold__tiers__elite__positive_windows=[],
        gold__tiers__strong__positive_windows=[],
    )
    lake = Lake(str(tmp_path / "lake"))
    write_trades(lake, trades)
    run_wallet_pnl(app, engine="spark", full_refresh=True)
    before = rows_by_key(lake.read(WALLET_PNL))
    windows_before = windows_by_key(lake.read(WALLET_PNL_WINDOWS))

    more = [dict(t, tx_hash=t["tx_hash"] + "b", block_unix_time=t["block_unix_time"] + 10**6)
            for t in trades if t["wallet_address"] == "W0"][:20]  # fmt: skip
    from datetime import UTC, datetime

    for t in more:  # fetched after the first run's calculated_at
        t["fetched_at"] = datetime.now(UTC)
    write_trades(lake, more)
    summary = run_wallet_pnl(app, engine="spark")
    after = rows_by_key(lake.read(WALLET_PNL))

    # W0 traded; wallets holding a token W0 traded are re-priced (fallback price moved).
    assert summary.mode == "incremental" and summary.wallets >= 1
    assert_matches(after, oracle_pnl(trades + more, (), QUOTES), trades + more)
    changed = {w for (w, _), r in after.items() if r["run_id"] == summary.run_id}
    assert "W0" in changed and "Z" not in changed
    assert all(after[k]["run_id"] == before[k]["run_id"] for k in after if k[0] not in changed)
    newest = table_history(lake, WALLET_PNL)[0]  # what `st lake history` shows
    assert (newest["stage"], newest["run_id"]) == ("silver.pnl", summary.run_id)

    # Every wallet's windows now end at the new latest trade and equal a full refresh's:
    # recomputed, or (Z) the stored numbers with the bounds moved.
    got = windows_by_key(lake.read(WALLET_PNL_WINDOWS))
    as_of = max(t["block_unix_time"] for t in trades + more)
    want = oracle_windows(trades + more, (), QUOTES, windows=windows, as_of=as_of)
    assert_windows_match(got, want, trades + more)
    z = [k for k in got if k[0] == "Z"]
    assert len(z) == 6 and all(got[k]["run_id"] == windows_before[k]["run_id"] for k in z)
    assert {got[k]["window_end"] for k in z} == {want[z[0]]["window_end"]}
    assert got[("Z", "TokZ", "all")]["realized_pnl"] == 10.0
