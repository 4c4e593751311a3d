"""`st silver pnl` on a real Delta lake: full refresh, incremental merge, --wallet, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import WALLET_PNL, WALLET_TRADES
from tests.harness import write_config
from tests.pnl_oracle import oracle_pnl
from tests.pnl_support import (
    FETCHED,
    QUOTES,
    assert_matches,
    random_history,
    rows_by_key,
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
