"""The token safety gate end to end: `st alerts run` asks the simulator's
/defi/token_security over HTTP, blocks an unsafe token's alert, says unknown when the
lookup fails, and judges a token seen before from the lake without asking again."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from smarttrader_cli.alerts import outbox
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_SECURITY, WEBHOOK_SWAPS
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.security_api import security_object
from smarttrader_cli.sim.server import run_in_thread
from tests.integration.test_alerts_delivery import ST, FakeChannel, _setup

META = CommitMeta("seed", "test", "h")
SETTINGS = SimSettings(seed=11, wallets=12, tokens=12, trades=300)
PATH = "path /defi/token_security"


def _tokens(market: Market) -> dict[str, str]:
    """An unsafe token (a mint authority), the one whose lookup fails, and a safe one."""
    truth = market.truth()["token_security"]
    traded = [t for t in market.tokens if t.kind != "quote"]
    unsafe = next(t for t in traded if truth[t.address]["mint_authority"])
    failing = next(t for t in traded if truth[t.address]["lookup_fails"])
    safe = next(
        t
        for t in traded
        if not truth[t.address]["mint_authority"]
        and not truth[t.address]["freeze_authority"]
        and not truth[t.address]["lookup_fails"]
        and (security_object(market, t)["top10HolderPercent"] or 1) < 0.5
        and t.metrics["liquidity"] > 10_000
    )
    return {"unsafe": unsafe.address, "failing": failing.address, "safe": safe.address}


def _buys(lake: Lake, legs: list[tuple[str, str]]) -> None:
    now = datetime.now(UTC)
    rows = [
        {"signature": sig, "wallet": "w0", "leg": 0, "direction": "buy", "token_address": token,
         "value_usd": 5000.0, "is_smart_wallet": True, "event_time": now - timedelta(minutes=2)}
        for sig, token in legs
    ]  # fmt: skip
    lake.merge(WEBHOOK_SWAPS, pa.Table.from_pylist(rows), META)


def _st(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [str(ST), *args, "--format", "json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_an_unsafe_token_is_blocked_a_failed_lookup_is_unknown_and_facts_are_cached(
    tmp_path: Path,
) -> None:
    telegram = FakeChannel("telegram").start()
    sim = run_in_thread(SETTINGS)
    tokens = _tokens(sim.market)
    env = _setup(
        tmp_path, {"telegram": telegram},
        **{"birdeye.base_url": sim.base_url, "birdeye.rate_limit_rps": 0,
           "alerts.rules.confluence.enabled": False},
    )  # fmt: skip
    lake = Lake(str(tmp_path / "lake"))
    lake.overwrite(SMART_WALLETS, pa.Table.from_pylist([{"wallet_address": "w0", "tier": "elite", "rank": 1}]), META)  # fmt: skip
    try:
        _buys(lake, [("[k1]", tokens["unsafe"]), ("[k2]", tokens["failing"]), ("[k3]", tokens["safe"])])  # fmt: skip
        (first,) = _st(env, "alerts", "run")
        assert (first["safety_passed"], first["safety_blocked"], first["safety_unknown"]) == (
            1,
            1,
            1,
        )
        assert first["sent"] == 2  # the blocked one is not sent
        asked = sim.stats()[PATH]
        assert asked == 4  # one each, and one retry of the failing lookup (max_retries 1)

        rows = {r["token_address"]: r for r in outbox.listing(lake)}
        unsafe, failing = rows[tokens["unsafe"]], rows[tokens["failing"]]
        assert (unsafe["state"], unsafe["safety"]) == ("blocked", "blocked")
        assert "mint authority" in unsafe["safety_reasons"]
        assert "safety: blocked (not sent): mint authority" in unsafe["text"]
        assert (failing["state"], failing["safety"]) == ("sent", "unknown")
        assert "HTTP 500" in failing["safety_reasons"]
        assert rows[tokens["safe"]]["safety"] == "passed"
        assert telegram.received == Counter({"k2": 1, "k3": 1})

        listed = _st(env, "alerts", "list", "--state", "blocked")
        assert [(r["token_address"], r["safety"]) for r in listed] == [
            (tokens["unsafe"], "blocked")
        ]
        assert "mint authority" in listed[0]["safety_reasons"]
        cached = {r["token_address"] for r in lake.read(TOKEN_SECURITY).to_pylist()}
        assert cached == {tokens["unsafe"], tokens["safe"]}  # a failed lookup is not cached

        # New alerts on the tokens already judged: their facts come from the lake.
        _buys(lake, [("[k4]", tokens["unsafe"]), ("[k5]", tokens["safe"])])
        (second,) = _st(env, "alerts", "run")
        assert (second["safety_passed"], second["safety_blocked"]) == (1, 1)
        assert sim.stats()[PATH] == asked
        assert telegram.received == Counter({"k2": 1, "k3": 1, "k5": 1})
    finally:
        telegram.stop()
        sim.stop()
