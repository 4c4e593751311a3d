"""The three bronze stages against the simulator over HTTP, with faults, reruns and resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import ApiError
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import (
    API_REJECTS,
    RUNS,
    TOKEN_METRICS,
    WALLET_FETCHES,
    WALLET_TRADES,
    WHALE_HOLDERS,
)
from smarttrader_cli.sim.market import SimSettings, address
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.stages import bronze_tokens, bronze_trades, bronze_whales
from smarttrader_cli.stages.contract import StageContext, StageResult
from tests.harness import write_config

pytestmark = pytest.mark.integration

END = int(time.time()) // 3600 * 3600 - 3600  # one market "now" shared by every sim here
RUN_COLUMNS = {"run_id", "fetched_at", "snapshot_at", "rejected_at"}


def _ctx(app: AppContext) -> StageContext:
    return StageContext.of(app.loaded, app.lake)


def run_tokens(app: AppContext) -> StageResult:
    return bronze_tokens.run(_ctx(app))


def run_whales(app: AppContext) -> StageResult:
    return bronze_whales.run(_ctx(app))


def run_trades(app: AppContext, **args: Any) -> StageResult:
    return bronze_trades.run(_ctx(app), **args)


def settings(**kw) -> SimSettings:
    return SimSettings(seed=21, wallets=30, tokens=8, trades=3000, end_time=END, **kw)


def app_for(directory: Path, base_url: str, **overrides) -> AppContext:
    # Client timeout 0.5 s < the sim's 1 s slow fault; retries are quick and many.
    config = {
        "lake.root": directory / "lake",
        "runtime.state_dir": directory / "state",
        "birdeye.base_url": base_url,
        "birdeye.rate_limit_rps": 200.0,
        "birdeye.burst": 20,
        "birdeye.timeout_seconds": 0.5,
        "birdeye.max_retries": 8,
        "birdeye.backoff_base_seconds": 0.02,
        "birdeye.backoff_max_seconds": 0.3,
        "birdeye.page_size": 50,
        "birdeye.max_offset": 500,  # small, so the bot's history slides its window
        "trades.commit_every_wallets": 7,
        **overrides,
    }
    return AppContext(config_path=write_config(directory / base_url.rsplit(":", 1)[1], config))


def rows(app: AppContext, spec) -> list[tuple]:
    table = app.lake.read(spec)
    keep = [c for c in table.column_names if c not in RUN_COLUMNS]
    return sorted(tuple(r[c] for c in keep) for r in table.select(keep).to_pylist())


def run_all(app: AppContext) -> None:
    run_tokens(app)
    run_whales(app)
    run_trades(app)


def test_faulty_run_completes_reruns_add_nothing_and_match_a_clean_run(tmp_path: Path) -> None:
    with run_in_thread(settings(fault_rate=0.05, fault_delay_seconds=1.0)) as sim:
        faulty = app_for(tmp_path / "faulty", sim.base_url)
        run_all(faulty)
        stats = sim.stats()
        assert sum(v for k, v in stats.items() if k.startswith("fault ")) > 0, stats
        first = {spec.name: rows(faulty, spec) for spec in (WHALE_HOLDERS, WALLET_TRADES)}
        # a second run: whales skipped (fetched recently), trades add no duplicates
        again = run_whales(faulty)
        assert again.details["tokens_fetched"] == 0 and again.rows_out == 0
        rerun = run_trades(faulty)
        assert rerun.rows_out == 0
        assert rows(faulty, WALLET_TRADES) == first[WALLET_TRADES.name]
        assert rows(faulty, WHALE_HOLDERS) == first[WHALE_HOLDERS.name]
        truth = sim.market.truth()
    trades = faulty.lake.read(WALLET_TRADES)
    keys = set(zip(*(trades[k].to_pylist() for k in WALLET_TRADES.keys), strict=True))
    assert len(keys) == trades.num_rows > 1000
    wallets = set(trades["wallet_address"].to_pylist())
    assert set(truth["smart_wallets"]) <= wallets and set(truth["losing_wallets"]) <= wallets
    # only trades inside the lookback window, both legs filled
    assert min(trades["block_unix_time"].to_pylist()) > time.time() - 30 * 86400 - 60
    assert None not in trades["from_token_address"].to_pylist()
    statuses = [r["status"] for r in faulty.lake.read(RUNS).to_pylist()]
    assert statuses.count("succeeded") == 5 and "failed" not in statuses

    with run_in_thread(settings()) as clean_sim:
        clean = app_for(tmp_path / "clean", clean_sim.base_url)
        run_all(clean)
        assert clean_sim.stats().get("status 429", 0) == 0
    for spec in (TOKEN_METRICS, WHALE_HOLDERS, WALLET_TRADES, API_REJECTS):
        assert rows(faulty, spec) == rows(clean, spec), spec.name
    rejects = faulty.lake.read(API_REJECTS).to_pylist()
    assert all(r["reason"] and r["raw"] for r in rejects)


def test_a_failed_run_keeps_completed_wallets_and_the_next_run_resumes(tmp_path: Path) -> None:
    with run_in_thread(settings()) as sim:
        reference = app_for(tmp_path / "reference", sim.base_url)
        run_all(reference)
        # the same lake, first filled up to the whales, then a trades run hitting an outage
        shared = {"lake.root": tmp_path / "lake", "runtime.state_dir": tmp_path / "state"}
        app = app_for(tmp_path / "a", sim.base_url, **shared)
        run_tokens(app)
        run_whales(app)
    broken = settings(outage_after_requests=20)
    with run_in_thread(broken) as outage:
        failing = app_for(
            tmp_path / "b",
            outage.base_url,
            **shared,
            **{
                "birdeye.max_retries": 1,
                "birdeye.max_concurrency": 1,
                "trades.commit_every_wallets": 2,
            },
        )
        with pytest.raises(ApiError, match="HTTP 503"):
            run_trades(failing)
    kept = set(failing.lake.read(WALLET_TRADES)["wallet_address"].to_pylist())
    expected = set(reference.lake.read(WALLET_TRADES)["wallet_address"].to_pylist())
    assert 0 < len(kept) < len(expected)
    runs = failing.lake.read(RUNS).to_pylist()
    assert [r["status"] for r in runs if r["stage"] == "bronze.trades"] == ["failed"]
    with run_in_thread(settings()) as sim:
        resumed = app_for(tmp_path / "c", sim.base_url, **shared)
        run_trades(resumed)
    assert rows(resumed, WALLET_TRADES) == rows(reference, WALLET_TRADES)


def test_capped_runs_reach_every_whale_in_turn_even_those_that_never_traded(
    tmp_path: Path,
) -> None:
    with run_in_thread(settings()) as sim:
        app = app_for(tmp_path, sim.base_url, **{"trades.max_wallets_per_run": 8})
        run_tokens(app)
        run_whales(app)
        # Holders the market has no swaps for: never a watermark, yet fetched only in turn.
        holders = app.lake.read(WHALE_HOLDERS).slice(0, 4).to_pylist()
        for i, row in enumerate(holders):
            row["wallet_address"] = address(99, "quiet", i, 0)
        meta = CommitMeta("test-quiet-holders", "test", "none")
        app.lake.append(WHALE_HOLDERS, pa.Table.from_pylist(holders, WHALE_HOLDERS.schema), meta)
        whales = set(app.lake.read(WHALE_HOLDERS)["wallet_address"].to_pylist())
        runs = -(-len(whales) // 8)
        fetched_per_run: list[set[str]] = []
        for _ in range(runs):
            summary = run_trades(app)
            assert summary.details["wallets"] == 8
            fetches = app.lake.read(WALLET_FETCHES).to_pylist()
            fetched_per_run.append(
                {r["wallet_address"] for r in fetches if r["run_id"] == summary.run_id}
            )
    assert set().union(*fetched_per_run) == whales
    full_runs = fetched_per_run[: len(whales) // 8]  # nobody twice before everybody once
    assert sum(len(s) for s in full_runs) == len(set().union(*full_runs)) == 8 * len(full_runs)
    quiet = {r["wallet_address"]: r for r in app.lake.read(WALLET_FETCHES).to_pylist()}
    assert all(quiet[address(99, "quiet", i, 0)]["trades"] == 0 for i in range(4))


def test_one_failing_wallet_never_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smarttrader_cli.errors import StageError
    from smarttrader_cli.sources.birdeye import BirdeyeClient

    with run_in_thread(settings()) as sim:
        app = app_for(tmp_path, sim.base_url, **{"trades.commit_every_wallets": 100})
        run_tokens(app)
        run_whales(app)
        whales = sorted(set(app.lake.read(WHALE_HOLDERS)["wallet_address"].to_pylist()))
        broken = whales[len(whales) // 2]
        original = BirdeyeClient.wallet_trades

        async def flaky(self, wallet, *args, **kwargs):  # type: ignore[no-untyped-def]
            if wallet == broken:
                raise ApiError(f"BirdEye /trader/txs/seek_by_time answered 400: bad {wallet}")
            return await original(self, wallet, *args, **kwargs)

        monkeypatch.setattr(BirdeyeClient, "wallet_trades", flaky)
        with pytest.raises(StageError, match=rf"1 of {len(whales)} wallets could not be fetched"):
            run_trades(app)
        fetched = set(app.lake.read(WALLET_FETCHES)["wallet_address"].to_pylist())
        assert fetched == set(whales) - {broken}  # every other wallet was fetched and kept
        monkeypatch.setattr(BirdeyeClient, "wallet_trades", original)
        run_trades(app)  # the next run fetches the one that failed
        assert set(app.lake.read(WALLET_FETCHES)["wallet_address"].to_pylist()) == set(whales)


DISCOVERY = {
    "discovery.top_traders": True,
    "discovery.top_traders_per_token": 15,
    "discovery.gainers": True,
    "discovery.gainers_time_frames": ["1W", "yesterday"],
    "discovery.gainers_per_list": 25,
    "whales.top_holders": 6,  # few holders: discovery must add wallets
}


def _malformed(item: dict[str, Any]) -> bool:
    wallet = item.get("owner", item.get("address"))
    return not isinstance(wallet, str) or isinstance(item.get("volume"), str)


def test_discovery_records_its_lists_and_trades_follow_holders_and_discovered_wallets(
    tmp_path: Path,
) -> None:
    import httpx

    from smarttrader_cli.lake.tables import WALLET_SOURCES
    from smarttrader_cli.sources.birdeye import GAINERS, TOP_TRADERS

    with run_in_thread(settings()) as sim:
        app = app_for(tmp_path, sim.base_url, **DISCOVERY)
        run_tokens(app)
        whales = run_whales(app)
        tokens = sorted(set(app.lake.read(TOKEN_METRICS)["token_address"].to_pylist()))
        assert whales.details["lists_fetched"] == len(tokens) + 2
        # what the simulator served for those lists, fetched again by hand
        served: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        with httpx.Client(base_url=sim.base_url) as c:
            for token in tokens:
                pages = [
                    c.get(TOP_TRADERS, params={"address": token, "offset": o, "limit": 10})
                    for o in (0, 10)
                ]
                items = pages[0].json()["data"]["items"] + pages[1].json()["data"]["items"]
                served[("top_traders", token, "24h")] = items[:15]
            for period in ("1W", "yesterday"):
                items = []
                for o in (0, 10, 20):
                    params = {"type": period, "offset": o, "limit": 10 if o < 20 else 5}
                    items += c.get(GAINERS, params=params).json()["data"]["items"]
                served[("gainers", "ALL_TOKENS", period)] = items
        again = run_whales(app)  # every list fetched within refetch_after_hours: skipped
        assert again.details["lists_fetched"] == 0 and again.rows_out == 0
        run_trades(app)
        app_off = app_for(tmp_path / "off", sim.base_url, **{"lake.root": tmp_path / "lake"})
        plans_off = bronze_trades.plan_wallets(_ctx(app_off), None, None, None, False)
    stored = app.lake.read(WALLET_SOURCES).to_pylist()
    for list_key, items in served.items():
        rows = sorted(
            (r for r in stored if (r["source"], r["scope"], r["time_frame"]) == list_key),
            key=lambda r: r["rank"],
        )
        good = [i for i in items if not _malformed(i)]
        wallet_key = "owner" if list_key[0] == "top_traders" else "address"
        assert [r["wallet_address"] for r in rows] == [i[wallet_key] for i in good], list_key
        assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
        if list_key[0] == "gainers":
            assert [r["pnl"] for r in rows] == [i["pnl"] for i in good]
            assert all(r["sort_by"] == "PnL" and r["network"] == "solana" for r in rows)
        else:
            assert [r["trade_count"] for r in rows] == [i["trade"] for i in good]
    assert {r["source"] for r in stored} == {"top_traders", "gainers"}
    malformed = sum(_malformed(i) for items in served.values() for i in items)
    rejects = [
        r for r in app.lake.read(API_REJECTS).to_pylist() if r["endpoint"] in (TOP_TRADERS, GAINERS)
    ]
    assert malformed > 0 and len(rejects) == malformed
    holders = set(app.lake.read(WHALE_HOLDERS)["wallet_address"].to_pylist())
    discovered = {r["wallet_address"] for r in stored}
    assert discovered - holders  # discovery found wallets the holders did not have
    fetched = set(app.lake.read(WALLET_FETCHES)["wallet_address"].to_pylist())
    assert fetched == holders | discovered
    # with discovery off, the same lake's trades follow the holders only
    assert {p.wallet for p in plans_off} == holders
