"""gold.flows over real Delta tables with real dbt-duckdb: windows, volumes, merge, range."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import TOKEN_FLOWS, WEBHOOK_SWAPS
from smarttrader_cli.stages import gold
from smarttrader_cli.stages.contract import StageContext, StageResult

pytestmark = pytest.mark.integration

META = CommitMeta("test-run", "test", "hash")
SOL = "So11111111111111111111111111111111111111112"
NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)


def flows(app: AppContext, now: datetime) -> StageResult:
    return gold.flows(StageContext.of(app.loaded, app.lake), now=now)


def leg(
    sig: str,
    wallet: str,
    leg_no: int,
    direction: str,
    token: str,
    usd: float | None,
    at: datetime,
    smart: bool = True,
) -> dict[str, Any]:
    return {
        "signature": sig,
        "wallet": wallet,
        "leg": leg_no,
        "direction": direction,
        "token_address": token,
        "amount": 1.0,
        "value_usd": usd,
        "event_time": at,
        "is_smart_wallet": smart,
        "event_type": "SWAP",
        "parsed_from": "events.swap",
    }


def swap(
    sig: str,
    wallet: str,
    token: str,
    usd: float,
    at: datetime,
    buy: bool = True,
    smart: bool = True,
) -> list[dict[str, Any]]:
    """A swap against SOL: the token leg plus the SOL leg going the other way."""
    token_dir, sol_dir = ("buy", "sell") if buy else ("sell", "buy")
    return [
        leg(sig, wallet, 0, sol_dir, SOL, usd, at, smart),
        leg(sig, wallet, 1, token_dir, token, usd, at, smart),
    ]


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"memory.min_free_mb": 64, "flows.window_minutes": 60, "flows.lookback_hours": 6}


def write_swaps(ctx: AppContext, rows: list[dict[str, Any]]) -> None:
    ctx.lake.merge(WEBHOOK_SWAPS, pa.Table.from_pylist(rows), META)


def test_flows_per_token_and_window(app_ctx: AppContext) -> None:
    h = NOW.replace(minute=0)
    rows = [
        *swap("s1", "W1", "BONK", 100.0, h + timedelta(minutes=5)),
        *swap("s2", "W2", "BONK", 50.0, h + timedelta(minutes=10)),
        *swap("s3", "W1", "BONK", 30.0, h + timedelta(minutes=20), buy=False),
        *swap("s4", "W3", "WIF", 70.0, h - timedelta(minutes=30)),
        *swap("s5", "NOTSMART", "BONK", 1e6, h + timedelta(minutes=6), smart=False),
        *swap("s6", "W1", "OLD", 999.0, NOW - timedelta(hours=10)),  # before the range
        leg("s7", "W2", 0, "buy", "WIF", None, h - timedelta(minutes=20)),  # unpriced leg
    ]
    write_swaps(app_ctx, rows)
    result = flows(app_ctx, now=NOW)
    assert result.details["since"] == datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
    stored = {
        (r["token_address"], r["window_start"]): r
        for r in app_ctx.lake.read(TOKEN_FLOWS).to_pylist()
    }
    assert set(stored) == {("BONK", h), ("WIF", h - timedelta(hours=1))}  # no SOL, no OLD
    bonk = stored[("BONK", h)]
    assert (bonk["buy_volume_usd"], bonk["sell_volume_usd"], bonk["net_flow_usd"]) == (
        150.0,
        30.0,
        120.0,
    )
    assert (bonk["buy_count"], bonk["sell_count"]) == (2, 1)
    assert (bonk["smart_buyers"], bonk["smart_sellers"]) == (2, 1)
    assert bonk["window_minutes"] == 60 and bonk["run_id"] == result.run_id
    wif = stored[("WIF", h - timedelta(hours=1))]
    # one of WIF's two buys has no USD value: the volume is unknown, not 70 and not 0
    assert (wif["buy_volume_usd"], wif["buy_count"], wif["smart_buyers"]) == (None, 2, 2)
    assert (wif["unpriced_buy_count"], wif["net_flow_usd"]) == (1, None)
    assert (bonk["unpriced_buy_count"], bonk["unpriced_sell_count"]) == (0, 0)
    assert [t["token_address"] for t in result.records] == ["BONK", "WIF"]
    assert result.details["legs"] == 5


def test_rerun_merges_and_drops_stale_windows_in_range(app_ctx: AppContext) -> None:
    h = NOW.replace(minute=0)
    old_window = h - timedelta(hours=20)
    # a window outside the range written earlier must survive recomputation
    write_swaps(app_ctx, swap("s0", "W1", "OLD", 10.0, old_window))
    flows(app_ctx, now=old_window + timedelta(minutes=30))
    write_swaps(app_ctx, swap("s1", "W1", "BONK", 100.0, h + timedelta(minutes=1)))
    flows(app_ctx, now=NOW)
    assert app_ctx.lake.read(TOKEN_FLOWS).num_rows == 2
    # the BONK swap turns out not to be from a smart wallet: its window disappears
    write_swaps(app_ctx, swap("s1", "W1", "BONK", 100.0, h + timedelta(minutes=1), smart=False))
    second = flows(app_ctx, now=NOW)
    stored = app_ctx.lake.read(TOKEN_FLOWS).to_pylist()
    assert [(r["token_address"], r["window_start"]) for r in stored] == [("OLD", old_window)]
    assert second.details["message"].startswith("no smart-wallet swaps since")


def test_cli_flows_top(app_ctx: AppContext) -> None:
    now = datetime.now(UTC)
    rows = []
    for i, (token, usd) in enumerate([("A", 10.0), ("B", 300.0), ("C", 50.0)]):
        rows += swap(f"s{i}", f"W{i}", token, usd, now - timedelta(minutes=5))
    write_swaps(app_ctx, rows)
    result = CliRunner().invoke(
        app,
        ["--config", str(app_ctx.config_path), "gold", "flows", "--top", "2", "-f", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)
    assert [(t["token_address"], t["net_flow_usd"]) for t in top] == [("B", 300.0), ("C", 50.0)]


def test_missing_swaps_table_fails_with_a_hint(app_ctx: AppContext) -> None:
    result = CliRunner().invoke(
        app, ["--config", str(app_ctx.config_path), "gold", "flows"], catch_exceptions=False
    )
    assert result.exit_code == 1
    assert "silver.webhook_swaps has not been written yet" in result.stderr
