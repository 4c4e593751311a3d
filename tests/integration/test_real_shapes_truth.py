"""Against the simulator with every real-payload quirk on, bronze and silver equal its truth.

BirdEye: every planted swap of the fetched wallets' windows is one bronze.wallet_trades row
(both legs, amounts to 1e-9), the planted malformed items are rejects, and a rerun adds
nothing. Helius: every event's legs in silver.webhook_swaps are the wallet's own (never a
pool's), with the truth's amounts and USD values, and events that trade nothing have none.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import pytest

from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.tables import API_REJECTS, WALLET_TRADES, WEBHOOK_SWAPS
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sim.truth import birdeye_truth, helius_truth
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stages import (
    bronze_tokens,
    bronze_trades,
    bronze_whales,
    prices,
    silver_webhooks,
    stream_drain,
)
from smarttrader_cli.stages.contract import StageContext
from tests.harness import write_config
from tests.stream_support import outbound, produce

pytestmark = pytest.mark.integration

END = int(time.time()) // 3600 * 3600
SETTINGS = SimSettings(seed=5, wallets=40, tokens=8, trades=6000, end_time=END)
EVENTS = 600


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


@pytest.fixture(scope="module")
def lake_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[AppContext, Market, int]:
    directory = tmp_path_factory.mktemp("truth")
    sim = run_in_thread(SETTINGS)
    try:
        app = AppContext(
            config_path=write_config(
                directory,
                {
                    "lake.root": directory / "lake",
                    "runtime.state_dir": directory / "state",
                    "stream.local_dir": directory / "stream",
                    "birdeye.base_url": sim.base_url,
                    "birdeye.rate_limit_rps": 0,
                    "birdeye.page_size": 100,
                    "tokens.min_liquidity": 0,
                    "tokens.min_market_cap": 0,
                    "tokens.min_volume_24h_usd": 0,
                    "tokens.min_holder": 0,
                    "tokens.min_trade_24h_count": 0,
                    "whales.min_share_of_supply": 0,
                    "trades.lookback_days": 3650,
                    "prices.lookback_hours": 6,
                },
            )
        )
        ctx = StageContext.of(app.loaded, app.lake)
        bronze_tokens.run(ctx)
        bronze_whales.run(ctx)
        bronze_trades.run(ctx)
        # a rerun from the watermarks re-reads the newest second: no duplicates
        bronze_trades.run(ctx)
        start = int(time.time()) - EVENTS * 2
        market = Market(SETTINGS)
        produce(app.config_path, outbound(enhanced_swaps(market, EVENTS, start_time=start)))
        stream_drain.run(ctx)
        prices.run(ctx)
        silver_webhooks.run(ctx)
        silver_webhooks.run(ctx)  # idempotent
        yield app, market, start
    finally:
        sim.stop()


def test_bronze_trades_equal_the_planted_swaps(lake_run: tuple[AppContext, Market, int]) -> None:
    app, market, _ = lake_run
    rows = app.lake.read(WALLET_TRADES).to_pylist()
    wallets = sorted({r["wallet_address"] for r in rows})
    assert len(wallets) > 10
    truth = [leg for leg in birdeye_truth(market, wallets)]
    good = [leg for leg in truth if not leg.malformed]
    # one row per planted swap: two truth legs (sell, buy) per swap
    by_swap: dict[tuple[str, str, int], list] = {}
    for leg in good:
        by_swap.setdefault((leg.wallet, leg.tx, leg.time), []).append(leg)
    expected = Counter(
        (w, tx, sell.token_address, sell.amount_raw, buy.token_address, buy.amount_raw)
        for (w, tx, _), legs in by_swap.items()
        for sell, buy in zip(legs[0::2], legs[1::2], strict=True)
    )
    got = Counter(
        (
            r["wallet_address"],
            r["tx_hash"],
            r["from_token_address"],
            int(r["from_amount_raw"]),
            r["to_token_address"],
            int(r["to_amount_raw"]),
        )
        for r in rows
    )
    assert got == expected
    assert len(rows) == len({(r["tx_hash"], r["ins_index"], r["inner_ins_index"], r["fill_id"],
                              r["wallet_address"]) for r in rows})  # fmt: skip
    # the quirks were there: top-level swaps, openbook fills sharing a tx, float raw amounts
    assert any(r["inner_ins_index"] == -1 and r["ins_index"] >= 0 for r in rows)
    fills = Counter(r["tx_hash"] for r in rows if r["fill_id"])
    assert fills and max(fills.values()) >= 2
    # amounts in UI units to 1e-9 of the truth (raw / 10**decimals)
    ui = {(leg.wallet, leg.tx, leg.direction, leg.amount_raw): leg.amount for leg in good}
    for r in rows:
        assert _close(r["from_amount"], ui[(r["wallet_address"], r["tx_hash"], "sell",
                                            int(r["from_amount_raw"]))])  # fmt: skip
        assert _close(r["to_amount"], ui[(r["wallet_address"], r["tx_hash"], "buy",
                                          int(r["to_amount_raw"]))])  # fmt: skip
    # each planted malformed item is one reject row, recorded once despite the rerun
    malformed = {(leg.wallet, leg.tx) for leg in truth if leg.malformed}
    rejects = app.lake.read(API_REJECTS).to_pylist()
    assert len(rejects) == len(malformed) > 0


def test_webhook_swaps_equal_the_planted_legs(lake_run: tuple[AppContext, Market, int]) -> None:
    app, market, start = lake_run
    truth = helius_truth(market, EVENTS, start)
    rows = app.lake.read(WEBHOOK_SWAPS).to_pylist()
    outcomes = Counter(e["outcome"] for e in truth)
    assert outcomes["swap"] and outcomes["failed"] and outcomes["not_a_swap"]
    want = {
        (leg.tx, leg.wallet, leg.direction, leg.token_address): leg
        for e in truth
        for leg in e["legs"]
    }
    got = {(r["signature"], r["wallet"], r["direction"], r["token_address"]): r for r in rows}
    assert len(rows) == len(got)  # no duplicates after the rerun
    assert set(got) == set(want)  # no missing leg, no extra one (no pool, no doubled SOL)
    traders = {e["wallet"] for e in truth}
    assert {r["wallet"] for r in rows} <= traders
    for key, leg in want.items():
        row = got[key]
        assert _close(row["amount"], leg.amount), (key, row["amount"], leg.amount)
        assert int(row["amount_raw"]) == leg.amount_raw
        assert leg.value_usd is not None and row["value_usd"] is not None, (key, row)
        assert _close(row["value_usd"], leg.value_usd, rel=1e-6), (key, row, leg)
    labels = Counter(r["event_type"] for r in rows)
    assert labels["TRANSFER"] and labels["UNKNOWN"]  # mislabelled swaps are parsed


def test_rerunning_the_webhook_stage_changes_nothing(
    lake_run: tuple[AppContext, Market, int], tmp_path: Path
) -> None:
    app, _, _ = lake_run
    before = sorted(
        (r["signature"], r["wallet"], r["leg"], r["value_usd"])
        for r in app.lake.read(WEBHOOK_SWAPS).to_pylist()
    )
    result = silver_webhooks.run(StageContext.of(app.loaded, app.lake))
    assert result.details["inserted"] == 0
    after = sorted(
        (r["signature"], r["wallet"], r["leg"], r["value_usd"])
        for r in app.lake.read(WEBHOOK_SWAPS).to_pylist()
    )
    assert after == before
