"""The simulator's /defi/token_security: planted facts in BirdEye's shape, nulls, a failing token."""

from __future__ import annotations

import httpx

from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sources.security import parse_token_security

SETTINGS = SimSettings(seed=5, wallets=12, tokens=16, trades=300, end_time=1_750_000_000)


def test_token_security_serves_the_planted_facts_with_nulls_and_one_failing_token() -> None:
    market = Market(SETTINGS)
    truth = market.truth()["token_security"]
    assert sum(bool(t["lookup_fails"]) for t in truth.values()) == 1
    traded = [t for t in market.tokens if t.kind != "quote"]
    assert any(truth[t.address]["mint_authority"] for t in traded)
    assert any(truth[t.address]["top10_holder_share"] > 0.5 for t in traded)
    nulls = 0
    with run_in_thread(SETTINGS) as sim, httpx.Client(base_url=sim.base_url) as client:
        for token in traded:
            answer = client.get("/defi/token_security", params={"address": token.address})
            planted = truth[token.address]
            if planted["lookup_fails"]:
                assert answer.status_code == 500
                continue
            data = answer.json()["data"]
            facts = parse_token_security(data, token.address)  # the shape the client reads
            assert facts.mint_authority == planted["mint_authority"]
            assert facts.freeze_authority == planted["freeze_authority"]
            share = facts.top10_holder_share
            assert share is None or share == planted["top10_holder_share"]
            nulls += share is None
        unknown = client.get("/defi/token_security", params={"address": "Unknown1111"})
        assert unknown.json() == {"success": True, "data": None}
        assert client.get("/defi/token_security").status_code == 400
    assert nulls  # some shares are null, as BirdEye's may be
