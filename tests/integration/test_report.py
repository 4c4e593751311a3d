"""`st gold report`: a self-contained page whose charts Chromium renders with their data."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import SMART_WALLETS, WALLET_TRADES
from smarttrader_cli.report.data import cumulative_realized_pnl, sample_times

pytestmark = pytest.mark.integration

META = CommitMeta("r", "test", "h")
SOL = "So11111111111111111111111111111111111111112"
DAY = 86_400
T0 = 1_740_000_000 - 1_740_000_000 % DAY + 3600  # 01:00 UTC on some day

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def trade(
    wallet: str, n: int, day: int, buy: bool, qty: float, token_price: float
) -> dict[str, Any]:
    """A swap of TOK against SOL (SOL at $100) on day `day`."""
    sol = {"token_address": SOL, "amount": qty * token_price / 100.0, "price_usd": 100.0}
    tok = {"token_address": "TOK", "amount": qty, "price_usd": token_price}
    gave, got = (sol, tok) if buy else (tok, sol)
    return {
        "tx_hash": f"{wallet}-{n}",
        "ins_index": 0,
        "inner_ins_index": 0,
        "fill_id": "",
        "wallet_address": wallet,
        "block_unix_time": T0 + day * DAY,
        **{f"from_{k}": v for k, v in gave.items()},
        **{f"to_{k}": v for k, v in got.items()},
    }


@pytest.fixture
def ctx(app_ctx: AppContext) -> AppContext:
    """app_ctx with a ranking and the ranked wallets' trades."""
    ranking = [
        {
            "wallet_address": "W1",
            "rank": 1,
            "tier": "elite",
            "score": 0.8,
            "total_pnl": 5000.0,
            "roi": 0.5,
            "win_rate": 0.7,
            "trade_count": 40,
        },
        {
            "wallet_address": "W2",
            "rank": 2,
            "tier": "strong",
            "score": 0.6,
            "total_pnl": 400.0,
            "roi": 0.2,
            "win_rate": 0.5,
            "trade_count": 9,
        },
        {
            "wallet_address": "W3",
            "rank": 3,
            "tier": "promising",
            "score": 0.3,
            "total_pnl": 20.0,
            "roi": 0.02,
            "win_rate": 0.45,
            "trade_count": 2,
        },
    ]
    stamp = {"ranked_at": datetime(2025, 3, 1, tzinfo=UTC), "run_id": "r"}
    app_ctx.lake.overwrite(
        SMART_WALLETS, pa.Table.from_pylist([{**r, **stamp} for r in ranking]), META
    )
    trades = [
        trade("W1", 0, 0, True, 10, 1.0),  # buy 10 TOK for $10
        trade("W1", 1, 1, False, 5, 3.0),  # sell 5 for $15, cost $5: +10
        trade("W1", 2, 3, False, 5, 0.5),  # sell 5 for $2.5, cost $5: -2.5
        trade("W2", 0, 1, True, 4, 2.0),  # buy only: nothing realized
        trade("OTHER", 0, 0, True, 1, 1.0),  # not ranked: not plotted
    ]
    app_ctx.lake.append(WALLET_TRADES, pa.Table.from_pylist(trades), META)
    return app_ctx


def test_cumulative_realized_pnl_per_day(ctx: AppContext) -> None:
    series = cumulative_realized_pnl(ctx.lake, ctx.config, ["W1", "W2"])
    end = T0 - T0 % DAY + DAY - 1
    assert series["W1"] == [
        (end, 0.0),
        (end + DAY, 10.0),
        (end + 2 * DAY, 10.0),
        (end + 3 * DAY, 7.5),
    ]
    assert [v for _, v in series["W2"]] == [0.0, 0.0, 0.0, 0.0]


def test_sample_times_are_capped_and_end_at_the_last_trade() -> None:
    times = sample_times(T0, T0 + 100 * DAY, 10)
    assert len(times) == 10 and times[-1] >= T0 + 100 * DAY
    assert times == sorted(times)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh)")
def test_report_renders_its_charts_in_headless_chromium(ctx: AppContext, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        app,
        ["--config", str(ctx.config_path), "gold", "report", "--out", str(out), "--top", "2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "3 wallets, 3 charts" in result.stdout
    page = out.read_text()
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"""(src|<link[^>]*href)\s*=\s*["']?(https?:)?//""", page)
    # the only remote addresses are links a reader may follow: each wallet's explorer pages
    hosts = set(re.findall(r"""<a [^>]*href="https://([^/"]+)/""", page))
    assert hosts == {"birdeye.so", "solscan.io"}
    assert 'href="https://birdeye.so/profile/W1?chain=solana"' in page
    assert "<script" not in page

    profile = tmp_path / "chromium-profile"
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1100,2400",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", out.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    charts = dict(re.findall(r'<svg[^>]*data-chart="([^"]+)"[^>]*>(.*?)</svg>', dom, re.S))
    assert set(charts) == {"pnl-by-tier", "roi-vs-win-rate", "cumulative-pnl"}
    # one dot per ranked wallet in the distribution and in the scatter
    assert sorted(re.findall(r'class="point" data-value="([\d.]+)"', charts["pnl-by-tier"])) == [
        "20.00",
        "400.00",
        "5000.00",
    ]
    assert len(re.findall(r"<circle[^>]*class=\"point\"", charts["roi-vs-win-rate"])) == 3
    # the two top wallets as lines, four daily points each
    lines = re.findall(
        r'<polyline[^>]*data-series="([^"]+)"[^>]*data-points="(\d+)"', charts["cumulative-pnl"]
    )
    assert lines == [("#1 W1", "4"), ("#2 W2", "4")]

    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", out.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_needs_a_ranking(st_config: Callable[..., Path], tmp_path: Path) -> None:
    config = st_config()
    result = CliRunner().invoke(
        app,
        ["--config", str(config), "gold", "report", "--out", str(tmp_path / "r.html")],
        catch_exceptions=False,
    )
    assert result.exit_code == 1 and "run `st gold rank` first" in result.stderr
    assert not (tmp_path / "r.html").exists()
