"""DuckDB's incremental `st silver pnl` (docs/pnl.md §7) equals a full refresh, round after
round, and falls back to one when its state cannot be trusted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import (
    TOKEN_METRICS,
    WALLET_PNL,
    WALLET_PNL_LEDGER,
    WALLET_PNL_PRICES,
    WALLET_PNL_WINDOWS,
    WALLET_TRADES,
)
from tests.harness import write_config
from tests.pnl_oracle import oracle_pnl, oracle_windows
from tests.pnl_support import (
    FETCHED,
    QUOTES,
    assert_matches,
    assert_windows_match,
    buy,
    merge_trades,
    random_history,
    rows_by_key,
    sell,
    windows_by_key,
    write_metrics,
    write_trades,
)

pytestmark = pytest.mark.integration
WINDOWS = ("1d", "7d", "30d", "all")
H = 3600


def _pnl(cfg: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--config", str(cfg), "silver", "pnl", "-f", "json", *args])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output[result.output.index("[") :])
    return {**row, "log": result.output[: result.output.index("[")]}


def _now(offset: int = 0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=offset)


def _expect_full_refresh_equal(lake: Lake) -> None:
    """Both tables equal the oracle on the lake's bronze rows (the oracle = a full refresh)."""
    trades = lake.read(WALLET_TRADES).to_pylist()
    metrics = lake.read(TOKEN_METRICS).to_pylist()
    as_of = max(t["block_unix_time"] for t in trades)
    assert_matches(rows_by_key(lake.read(WALLET_PNL)), oracle_pnl(trades, metrics, QUOTES), trades)
    want = oracle_windows(trades, metrics, QUOTES, 0.0, WINDOWS, as_of)
    assert_windows_match(windows_by_key(lake.read(WALLET_PNL_WINDOWS)), want, trades)


def _later(trades: list[dict[str, Any]], wallet: str, after: int, suffix: str) -> list[dict]:
    """Copies of six of the wallet's trades, a minute apart from `after` seconds past the
    latest trade."""
    start = max(t["block_unix_time"] for t in trades) + after
    mine = [t for t in trades if t["wallet_address"] == wallet][:6]
    return [
        dict(t, tx_hash=t["tx_hash"] + suffix, block_unix_time=start + 60 * i, fetched_at=_now())
        for i, t in enumerate(mine)
    ]


def test_incremental_rounds_equal_a_full_refresh(tmp_path: Path):
    cfg = write_config(tmp_path, memory__min_free_mb=256)
    lake = Lake(str(tmp_path / "lake"))
    trades = random_history(seed=23, n=500, wallets=12, t_step=3600)  # ~10 days, 4 tokens
    write_trades(lake, trades)
    write_metrics(lake, {"Tok2": 7.0})
    assert _pnl(cfg, "--full-refresh")["mode"] == "full"
    assert lake.exists(WALLET_PNL_PRICES)
    _expect_full_refresh_equal(lake)

    # 1. new trades of one wallet, 2 h after the latest: windows move across edges
    write_trades(lake, _later(trades, "W1", 2 * H, "a"))
    out = _pnl(cfg)
    assert out["mode"] == "incremental" and 0 < out["wallets"] < 12, out
    _expect_full_refresh_equal(lake)

    # 2. late trades, older than everything the wallet had (before the watermark)
    late = [dict(buy("W3", "late1", trades[0]["block_unix_time"] - 5 * H, "Tok1", 4.0, 0.5),
                 fetched_at=_now()),
            dict(sell("W3", "late2", trades[0]["block_unix_time"] - 4 * H, "Tok1", 1.0, 0.8),
                 fetched_at=_now())]  # fmt: skip
    write_trades(lake, late)
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)

    # 3. a wallet's trades of one token removed, another's trade changed in place (merged)
    lake.delete(
        WALLET_TRADES,
        "wallet_address = 'W2' AND (from_token_address = 'Tok0' OR to_token_address = 'Tok0')",
        CommitMeta("t", "test", "h"),
    )
    changed = next(t for t in trades if t["wallet_address"] == "W0" and t["to_token_address"]
                   and t["to_token_address"].startswith("Tok") and t["to_amount"])  # fmt: skip
    merge_trades(lake, [dict(changed, to_amount=changed["to_amount"] * 3, fetched_at=_now())])
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)

    # 4. a new token, bought by an existing wallet and by a new wallet
    now = max(t["block_unix_time"] for t in lake.read(WALLET_TRADES).to_pylist())
    write_trades(lake, [dict(buy("W4", "new1", now + 60, "TokNew", 10.0, 2.0), fetched_at=_now()),
                        dict(buy("W9", "new2", now + 61, "TokNew", 5.0, 2.5), fetched_at=_now())])  # fmt: skip
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)

    # 5. a price-only move: a newer snapshot of two held tokens; no trade changed
    write_metrics(lake, {"Tok2": 9.5, "TokNew": 4.0}, at=FETCHED + timedelta(days=400))
    out = _pnl(cfg)
    assert out["mode"] == "incremental" and out["wallets"] == 0 and out["repriced_wallets"] > 0
    _expect_full_refresh_equal(lake)

    # 6. a later trade of a wallet holding nothing else: the windows' end moves 8 days, past
    #    the 1d and 7d edges of many older trades
    write_trades(lake, [dict(buy("W9", "new3", now + 8 * 86400, "Tok3", 1.0, 1.0),
                             fetched_at=_now())])  # fmt: skip
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)

    # 7. a re-fetched duplicate (same key, later fetched_at) with another price: the later
    #    row wins, and the token's fallback price follows it
    last = max(lake.read(WALLET_TRADES).to_pylist(), key=lambda t: t["block_unix_time"])
    write_trades(lake, [dict(last, to_price_usd=3.0, from_price_usd=None, fetched_at=_now(60))])
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)

    # 8. the trade behind Tok1's fallback price removed: the token is priced again from
    #    the other wallets' trades of it
    tok1 = [t for t in lake.read(WALLET_TRADES).to_pylist()
            if "Tok1" in (t["from_token_address"], t["to_token_address"])]  # fmt: skip
    gone = max(tok1, key=lambda t: (t["block_unix_time"], t["tx_hash"]))
    lake.delete(WALLET_TRADES, f"tx_hash = '{gone['tx_hash']}'", CommitMeta("t", "test", "h"))
    out = _pnl(cfg)
    assert out["mode"] == "incremental" and "lost their last priced trade" in out["log"], out
    _expect_full_refresh_equal(lake)

    # nothing new: nothing written
    versions = [lake.version(t) for t in (WALLET_PNL, WALLET_PNL_WINDOWS, WALLET_PNL_PRICES)]
    assert _pnl(cfg)["wallets"] == 0
    assert versions == [lake.version(t) for t in (WALLET_PNL, WALLET_PNL_WINDOWS,
                                                  WALLET_PNL_PRICES)]  # fmt: skip


def test_a_run_stopped_between_its_writes_makes_the_next_one_a_full_refresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = write_config(tmp_path, memory__min_free_mb=256)
    lake = Lake(str(tmp_path / "lake"))
    trades = random_history(seed=3, n=200, t_step=3600)
    write_trades(lake, trades)
    _pnl(cfg, "--full-refresh")
    write_trades(lake, _later(trades, "W0", 40 * H, "x"))

    real_merge = Lake.merge

    def failing_merge(self: Lake, spec: Any, *args: Any, **kwargs: Any) -> Any:
        if spec is WALLET_PNL:
            raise OSError("disk gone")
        return real_merge(self, spec, *args, **kwargs)

    monkeypatch.setattr(Lake, "merge", failing_merge)
    result = CliRunner().invoke(app, ["--config", str(cfg), "silver", "pnl"])
    assert result.exit_code == 1
    monkeypatch.undo()
    # the state and the windows went ahead of silver.wallet_pnl: the next run rebuilds
    out = _pnl(cfg)
    assert out["mode"] == "full", out
    _expect_full_refresh_equal(lake)
    write_trades(lake, _later(trades, "W1", 50 * H, "y"))
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)


def test_rows_written_by_another_run_make_the_next_one_a_full_refresh(tmp_path: Path):
    """A --wallet run (like a Spark run) writes silver.wallet_pnl without the state."""
    cfg = write_config(tmp_path, memory__min_free_mb=256)
    lake = Lake(str(tmp_path / "lake"))
    trades = random_history(seed=4, n=150, t_step=3600)
    write_trades(lake, trades)
    _pnl(cfg, "--full-refresh")
    _pnl(cfg, "--wallet", "W1")
    write_trades(lake, _later(trades, "W0", 20 * H, "z"))
    assert _pnl(cfg)["mode"] == "full"
    _expect_full_refresh_equal(lake)
    # other PnL options: the stored rows no longer hold
    cfg2 = write_config(tmp_path, memory__min_free_mb=256, pnl__min_leg_usd=1.0)
    assert _pnl(cfg2)["mode"] == "full"


def test_a_ledger_of_the_layout_before_days_is_rebuilt_into_them(tmp_path: Path):
    """A ledger written before its day partitions (no leg_date, one unpartitioned table)
    makes the next run a full refresh that writes it by day; the run after is incremental."""
    from deltalake import write_deltalake

    cfg = write_config(tmp_path, memory__min_free_mb=256)
    lake = Lake(str(tmp_path / "lake"))
    trades = random_history(seed=5, n=200, t_step=3600)
    write_trades(lake, trades)
    _pnl(cfg, "--full-refresh")
    ledger = lake.read(WALLET_PNL_LEDGER)
    assert ledger.num_rows
    old = ledger.drop_columns(["leg_date"])
    write_deltalake(
        lake.uri(WALLET_PNL_LEDGER), old, mode="overwrite", schema_mode="overwrite", partition_by=[]
    )
    assert lake.table(WALLET_PNL_LEDGER).metadata().partition_columns == []

    write_trades(lake, _later(trades, "W0", 30 * H, "p"))
    out = _pnl(cfg)
    assert out["mode"] == "full", out
    assert "partitioned otherwise" in out["log"] or "other columns" in out["log"], out["log"]
    rebuilt = lake.table(WALLET_PNL_LEDGER)
    assert rebuilt.metadata().partition_columns == ["leg_date"]
    days = lake.read(WALLET_PNL_LEDGER)
    assert days.column("leg_date").null_count == 0
    # every leg sits in the partition of its own UTC day
    assert days.column("leg_date").to_pylist() == [
        datetime.fromtimestamp(t, UTC).date() for t in days.column("block_unix_time").to_pylist()
    ]
    _expect_full_refresh_equal(lake)
    write_trades(lake, _later(trades, "W1", 40 * H, "q"))
    assert _pnl(cfg)["mode"] == "incremental"
    _expect_full_refresh_equal(lake)
