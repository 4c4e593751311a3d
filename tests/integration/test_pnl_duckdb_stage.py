"""`st silver pnl` on a real Delta lake: full refresh, incremental merge, --wallet, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_PNL_WINDOWS, WALLET_TRADES
from tests.harness import write_config
from tests.pnl_oracle import oracle_pnl, oracle_windows
from tests.pnl_support import (
    FETCHED,
    QUOTES,
    T0,
    assert_matches,
    assert_windows_match,
    buy,
    random_history,
    rows_by_key,
    sell,
    windows_by_key,
    write_metrics,
    write_trades,
)

pytestmark = pytest.mark.integration


def _config(tmp_path: Path) -> Path:
    return write_config(tmp_path, memory__min_free_mb=256)


def _pnl(cfg: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(cfg), "silver", "pnl", "-f", "json", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_full_then_incremental_then_wallet(tmp_path: Path):
    cfg, lake = _config(tmp_path), Lake(str(tmp_path / "lake"))
    trades = random_history(seed=5, n=300)
    write_trades(lake, trades)
    write_metrics(lake, {"Tok2": 7.0})
    snap = [{"token_address": "Tok2", "snapshot_at": FETCHED, "price": 7.0}]

    assert '"mode": "full"' in _pnl(cfg, "--full-refresh")
    assert_matches(rows_by_key(lake.read(WALLET_PNL)), oracle_pnl(trades, snap, QUOTES), trades)
    version = lake.version(WALLET_PNL)
    meta = lake.history(WALLET_PNL, 1)[0]
    assert meta["stage"] == "silver.pnl" and int(meta["legs"]) > 0

    # nothing new: an incremental run recomputes nothing and writes nothing
    assert '"wallets": 0' in _pnl(cfg)
    assert lake.version(WALLET_PNL) == version

    # new trades of one wallet: it (and holders of the tokens it traded) are recomputed
    more = [dict(t, tx_hash=t["tx_hash"] + "n", block_unix_time=t["block_unix_time"] + 10**6,
                 fetched_at=datetime.now(UTC))
            for t in trades if t["wallet_address"] == "W2"][:15]  # fmt: skip
    write_trades(lake, more)
    out = _pnl(cfg)
    assert '"mode": "incremental"' in out and '"wallets": 0' not in out
    after = rows_by_key(lake.read(WALLET_PNL))
    assert_matches(after, oracle_pnl(trades + more, snap, QUOTES), trades + more)
    assert lake.version(WALLET_PNL) == version + 1  # one commit

    # --wallet: the wallet's rows are replaced exactly (a token it no longer has disappears)
    gone = next(tok for (w, tok) in after if w == "W1" and tok != "ALL_TOKENS")
    lake.delete(
        WALLET_TRADES,
        f"wallet_address = 'W1' AND (from_token_address = '{gone}' OR to_token_address = '{gone}')",
        CommitMeta("t", "test", "h"),
    )
    _pnl(cfg, "--wallet", "W1")
    final = rows_by_key(lake.read(WALLET_PNL))
    assert ("W1", gone) not in final and ("W1", "ALL_TOKENS") in final
    remaining = lake.read(WALLET_TRADES).to_pylist()
    assert_matches(final, oracle_pnl(remaining, snap, QUOTES), remaining)


def test_without_bronze_trades_one_clear_line_and_exit_1(tmp_path: Path):
    cfg = _config(tmp_path)
    result = CliRunner().invoke(app, ["--config", str(cfg), "silver", "pnl"])
    assert result.exit_code == 1
    assert "bronze.wallet_trades has not been written yet" in result.output
    assert not Lake(str(tmp_path / "lake")).exists(WALLET_PNL)


def test_bad_engine_and_conflicting_options_are_usage_errors(tmp_path: Path):
    cfg = _config(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["--config", str(cfg), "silver", "pnl", "--engine", "flink"])
    assert bad.exit_code == 2 and "unknown engine" in bad.output
    both = runner.invoke(
        app, ["--config", str(cfg), "silver", "pnl", "--full-refresh", "--wallet", "W"]
    )
    assert both.exit_code == 2


# The tiers' window rules name 7d and 30d; a test on other windows lifts them.
NO_TIER_WINDOWS = {
    "gold__tiers__elite__positive_windows": [],
    "gold__tiers__strong__positive_windows": [],
}


def _windows(lake: Lake) -> dict[tuple[str, str, str], dict]:
    return windows_by_key(lake.read(WALLET_PNL_WINDOWS))


def _as_of(trades: list[dict]) -> int:
    return max(t["block_unix_time"] for t in trades)


def test_windows_after_incremental_runs_equal_a_full_refresh(tmp_path: Path):
    """Windows move with the latest trade: an incremental run recomputes the wallets whose
    trades crossed a window edge, moves the others' bounds, and equals the oracle (= full)."""
    cfg, lake = _config(tmp_path), Lake(str(tmp_path / "lake"))
    trades = random_history(seed=11, n=400, t_step=3600)  # ~8 days of history
    write_trades(lake, trades)
    snap = [{"token_address": "Tok2", "snapshot_at": FETCHED, "price": 7.0}]
    write_metrics(lake, {"Tok2": 7.0})
    windows = ("1d", "7d", "30d", "all")

    _pnl(cfg, "--full-refresh")
    got = _windows(lake)
    want = oracle_windows(trades, snap, QUOTES, 0.0, windows, _as_of(trades))
    assert_windows_match(got, want, trades)
    assert {r["window"] for r in got.values()} == set(windows)

    # W3 trades 30 hours later: the windows end later, W0's older trades leave the 1d window
    later = max(t["block_unix_time"] for t in trades) + 30 * 3600
    more = [dict(t, tx_hash=t["tx_hash"] + "n", block_unix_time=later, fetched_at=datetime.now(UTC))
            for t in trades if t["wallet_address"] == "W3"][:3]  # fmt: skip
    write_trades(lake, more)
    out = _pnl(cfg)
    assert '"mode": "incremental"' in out
    everything = trades + more
    want = oracle_windows(everything, snap, QUOTES, 0.0, windows, later)
    assert_windows_match(_windows(lake), want, everything)
    assert_matches(rows_by_key(lake.read(WALLET_PNL)), oracle_pnl(everything, snap, QUOTES),
                   everything)  # fmt: skip

    # --wallet with nothing new: the windows do not move, only W1's rows are rewritten
    version = lake.version(WALLET_PNL_WINDOWS)
    _pnl(cfg, "--wallet", "W1")
    assert lake.version(WALLET_PNL_WINDOWS) == version + 1
    assert_windows_match(_windows(lake), want, everything)

    # another window list: the next incremental run rebuilds the windows in full
    cfg2 = write_config(
        tmp_path, memory__min_free_mb=256, pnl__windows=["12h", "all"], **NO_TIER_WINDOWS
    )
    _pnl(cfg2)
    want = oracle_windows(everything, snap, QUOTES, 0.0, ("12h", "all"), later)
    assert_windows_match(_windows(lake), want, everything)


def test_a_closed_trade_leaves_the_1d_window_when_another_wallet_trades_later(tmp_path: Path):
    """A is not stale (nothing new, nothing open) yet its 1d window changes as time moves."""
    cfg, lake = _config(tmp_path), Lake(str(tmp_path / "lake"))
    h = 3600
    first = [
        buy("A", "a1", T0, "X", 10.0, 1.0),
        sell("A", "a2", T0 + h, "X", 10.0, 2.0),
        buy("B", "b1", T0 + 20 * h, "Y", 5.0, 1.0),
    ]
    write_trades(lake, first)
    _pnl(cfg, "--full-refresh")
    assert _windows(lake)[("A", "X", "1d")]["realized_pnl"] == 10.0
    later = [dict(buy("B", "b2", T0 + 30 * h, "Y", 1.0, 2.0), fetched_at=datetime.now(UTC))]
    write_trades(lake, later)
    _pnl(cfg)
    got = _windows(lake)
    assert got[("A", "X", "1d")]["realized_pnl"] == 0.0
    assert got[("A", "X", "7d")]["realized_pnl"] == 10.0
    want = oracle_windows(first + later, (), QUOTES, 0.0, ("1d", "7d", "30d", "all"), T0 + 30 * h)
    assert_windows_match(got, want, first + later)
