"""The token safety gate: verdicts over BirdEye's facts, nulls, failed lookups, the cache."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.alerts.safety import BLOCKED, PASSED, UNKNOWN, SafetyGate, judge
from smarttrader_cli.config import load_config
from smarttrader_cli.config.alerts_schema import AlertSafetyConfig
from smarttrader_cli.config.schema import Config
from smarttrader_cli.errors import ConfigError
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import TOKEN_SECURITY
from smarttrader_cli.sources.records import RecordError
from smarttrader_cli.sources.security import SecurityFacts, parse_token_security

META = CommitMeta("r", "alerts.run", "h")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# BirdEye's documented example (API_CONTRACTS.md "Token security"), fields as given
EXAMPLE: dict[str, Any] = {
    "creatorAddress": "9AhKqLR67hwapvG8SA2JFXaCshXc9nALJjpKaHZrsbkw", "ownerAddress": None,
    "creationTime": 1670531612, "creationSlot": 165714665, "creatorBalance": 48343.76164,
    "creatorPercentage": 5.44198858929173e-10, "mutableMetadata": True,
    "top10HolderBalance": 27020571907755.746, "top10HolderPercent": 0.3041667404641445,
    "totalSupply": 88834735403757.8, "preMarketHolder": [], "lockInfo": None,
    "freezeable": None, "freezeAuthority": None, "isToken2022": False, "jupStrictList": True,
}  # fmt: skip


def _facts(**fields: Any) -> SecurityFacts:
    base: dict[str, Any] = {
        "token_address": "T", "known": True, "mint_authority": None, "freeze_authority": None,
        "freezeable": None, "top10_holder_share": 0.2, "liquidity_usd": 50_000.0,
    }  # fmt: skip
    return SecurityFacts(**{**base, **fields})


RULES = AlertSafetyConfig()


def test_the_documented_example_passes_with_its_shares_read_as_fractions() -> None:
    facts = parse_token_security(EXAMPLE, "T")
    assert facts.known and facts.mint_authority is None and facts.freeze_authority is None
    assert facts.top10_holder_share == pytest.approx(0.3042, abs=1e-4)
    assert judge(facts, AlertSafetyConfig(min_liquidity_usd=0)).status == PASSED


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"mint_authority": "Auth1"}, "mint authority Auth1 (BirdEye ownerAddress)"),
        ({"freeze_authority": "Frz1"}, "freeze authority Frz1"),
        ({"freezeable": True}, "freezeable (BirdEye freezeable: true)"),
        ({"top10_holder_share": 0.81}, "top 10 holders own 81% (more than 50%)"),
        ({"liquidity_usd": 2_500.0}, "liquidity $2,500 (below $10,000)"),
    ],
)
def test_each_rule_blocks_on_its_fact_and_says_why(fields: dict[str, Any], reason: str) -> None:
    verdict = judge(_facts(**fields), RULES)
    assert (verdict.status, verdict.reasons, verdict.blocks) == (BLOCKED, (reason,), True)


def test_a_rule_turned_off_blocks_nothing() -> None:
    rules = AlertSafetyConfig(
        block_mint_authority=False, block_freeze_authority=False,
        max_top10_holder_share=1.0, min_liquidity_usd=0,
    )  # fmt: skip
    risky = _facts(mint_authority="A", freezeable=True, top10_holder_share=None, liquidity_usd=1)
    assert judge(risky, rules).status == PASSED


def test_a_null_fact_a_rule_needs_is_unknown_and_blocks_only_if_configured() -> None:
    verdict = judge(_facts(top10_holder_share=None, liquidity_usd=None), RULES)
    assert verdict.status == UNKNOWN and not verdict.blocks
    assert verdict.reasons == (
        "top-10 holder share unknown (null)",
        "liquidity unknown (BirdEye priced no pool)",
    )
    assert judge(_facts(top10_holder_share=None), AlertSafetyConfig(block_unknown=True)).blocks
    # a known fact that blocks wins over an unknown one, and both are said
    both = judge(_facts(top10_holder_share=None, mint_authority="A"), RULES)
    assert both.status == BLOCKED and len(both.reasons) == 2


def test_a_failed_lookup_or_a_token_birdeye_does_not_know_is_unknown() -> None:
    failed = judge(None, RULES, ["security lookup failed: HTTP 500"])
    assert (failed.status, failed.reasons, failed.blocks) == (
        UNKNOWN, ("security lookup failed: HTTP 500",), False,
    )  # fmt: skip
    assert judge(None, AlertSafetyConfig(block_unknown=True), ["x"]).blocks
    unknown = judge(parse_token_security(None, "T"), AlertSafetyConfig(min_liquidity_usd=0))
    assert unknown.reasons == ("BirdEye has no security facts for the token",)


def test_malformed_facts_are_refused_with_the_field_named() -> None:
    with pytest.raises(RecordError, match="top10HolderPercent: expected a fraction"):
        parse_token_security({**EXAMPLE, "top10HolderPercent": 30.4}, "T")  # a percent
    with pytest.raises(RecordError, match="freezeable: expected true, false or null"):
        parse_token_security({**EXAMPLE, "freezeable": "yes"}, "T")
    with pytest.raises(RecordError, match="expected an object"):
        parse_token_security(["not", "an", "object"], "T")


def test_the_safety_keys_are_validated(tmp_path: Path) -> None:
    for env, key in [
        ({"ST_ALERTS__SAFETY__MAX_TOP10_HOLDER_SHARE": "30"}, "max_top10_holder_share"),
        ({"ST_ALERTS__SAFETY__MIN_LIQUIDITY_USD": "-1"}, "min_liquidity_usd"),
        ({"ST_ALERTS__SAFETY__TTL_HOURS": "0"}, "ttl_hours"),
        ({"ST_ALERTS__SAFETY__BLOCK_UNKNOWN": "maybe"}, "block_unknown"),
    ]:
        with pytest.raises(ConfigError, match=rf"(?i)alerts(\.|__)safety(\.|__){key}"):
            load_config(None, env=env, search=False)
    loaded = load_config(
        None, env={"ST_ALERTS__SAFETY__MAX_TOP10_HOLDER_SHARE": "0.3"}, search=False
    )
    assert loaded.config.alerts.safety.max_top10_holder_share == 0.3


# --- the gate over HTTP (MockTransport) -------------------------------------------


class FakeBirdeye:
    """token_security and multi_price answers per token; counts what was asked."""

    def __init__(self, security: dict[str, Any], liquidity: dict[str, float | None]) -> None:
        self.security, self.liquidity = security, liquidity
        self.calls: Counter[str] = Counter()
        self.multi_sizes: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls[request.url.path] += 1
        if request.url.path == "/defi/multi_price":
            assert request.url.params["include_liquidity"] == "true"
            mints = request.url.params["list_address"].split(",")
            self.multi_sizes.append(len(mints))
            data = {m: {"value": 1.0, "updateUnixTime": 1, "liquidity": self.liquidity.get(m)}
                    for m in mints}  # fmt: skip
            return httpx.Response(200, json={"success": True, "data": data})
        answer = self.security[request.url.params["address"]]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json={"success": True, "data": answer})


def _gate(tmp_path: Path, fake: FakeBirdeye, clock: list[datetime], **safety: Any) -> SafetyGate:
    config = Config()
    config.birdeye.base_url = "http://127.0.0.1:9"  # loopback: no API key needed
    config.birdeye.rate_limit_rps = 0
    for k, v in safety.items():
        setattr(config.alerts.safety, k, v)

    async def no_sleep(_: float) -> None:
        return None

    return SafetyGate(
        Lake(str(tmp_path / "lake")), config, None,
        transport=httpx.MockTransport(fake), sleep=no_sleep, clock=lambda: clock[0],
    )  # fmt: skip


def _alert(token: str, rule: str = "wallet_buy", key: str = "sig:w") -> Alert:
    return Alert(rule, token, key, f"w bought {token}", {"wallet": "w"}, NOW)


def test_facts_are_fetched_once_per_token_and_ttl_and_cached_in_the_lake(tmp_path: Path) -> None:
    fake = FakeBirdeye(
        {"SAFE": EXAMPLE, "MINT": {**EXAMPLE, "ownerAddress": "Auth1"}},
        {"SAFE": 2e6, "MINT": 2e6},
    )
    clock = [NOW]
    gate = _gate(tmp_path, fake, clock)
    first = gate.apply([_alert("SAFE"), _alert("MINT"), _alert("SAFE", key="other:w")], META)
    assert [a.safety.status for a in first if a.safety] == [PASSED, BLOCKED, PASSED]
    assert first[1].text.endswith("safety: blocked (not sent): mint authority Auth1 "
                                  "(BirdEye ownerAddress)")  # fmt: skip
    assert json.loads(first[1].body())["safety"]["verdict"] == BLOCKED
    # two security calls, one batched liquidity call for both tokens
    assert fake.calls == Counter({"/defi/token_security": 2, "/defi/multi_price": 1})
    assert fake.multi_sizes == [2]
    cached = {r["token_address"]: r for r in gate.lake.read(TOKEN_SECURITY).to_pylist()}
    assert cached["MINT"]["mint_authority"] == "Auth1" and cached["SAFE"]["fetched_at"] == NOW

    # a new gate (the next run) judges from the lake: no request
    clock[0] = NOW + timedelta(hours=5)
    again = _gate(tmp_path, fake, clock)
    assert again.verdicts(["SAFE", "MINT"])["MINT"].status == BLOCKED
    assert sum(fake.calls.values()) == 3 and again.stats.cached == 2
    # past the TTL (6 h) the facts are fetched again
    clock[0] = NOW + timedelta(hours=7)
    again.verdicts(["SAFE"])
    assert fake.calls["/defi/token_security"] == 3


def test_a_failed_lookup_is_unknown_cached_nowhere_and_never_raises(tmp_path: Path) -> None:
    fake = FakeBirdeye(
        {
            "DOWN": httpx.Response(500, json={"success": False, "message": "Internal error"}),
            "SLOW": httpx.ReadTimeout("timed out"),
            "BAD": httpx.Response(200, text='{"success": true, "data": {"ownerAdd'),
            "ODD": {**EXAMPLE, "top10HolderPercent": "thirty"},
            "OK": EXAMPLE,
        },
        {"OK": 5e5},
    )
    gate = _gate(tmp_path, fake, [NOW], max_retries=1)
    verdicts = gate.verdicts(["DOWN", "SLOW", "BAD", "ODD", "OK"], META)
    assert {t: v.status for t, v in verdicts.items()} == {
        "DOWN": UNKNOWN, "SLOW": UNKNOWN, "BAD": UNKNOWN, "ODD": UNKNOWN, "OK": PASSED,
    }  # fmt: skip
    assert "failed after 2 attempts: HTTP 500" in verdicts["DOWN"].reasons[0]
    assert "timed out" in verdicts["SLOW"].reasons[0]
    assert "not valid JSON" in verdicts["BAD"].reasons[0]
    assert "top10HolderPercent: expected a number" in verdicts["ODD"].reasons[0]
    assert [r["token_address"] for r in gate.lake.read(TOKEN_SECURITY).to_pylist()] == ["OK"]
    calls = sum(fake.calls.values())
    # the same gate leaves a failed token alone for retry_failed_after_seconds
    assert gate.verdicts(["DOWN"])["DOWN"].status == UNKNOWN
    assert sum(fake.calls.values()) == calls
    blocking = _gate(tmp_path, fake, [NOW], max_retries=0, block_unknown=True)
    assert blocking.verdicts(["DOWN"])["DOWN"].blocks


def test_a_failed_liquidity_lookup_keeps_the_security_verdict(tmp_path: Path) -> None:
    fake = FakeBirdeye({"MINT": {**EXAMPLE, "ownerAddress": "A"}, "OK": EXAMPLE}, {})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/defi/multi_price":
            return httpx.Response(503, json={"success": False, "message": "down"})
        return fake(request)

    gate = _gate(tmp_path, fake, [NOW], max_retries=0)
    gate._transport = httpx.MockTransport(handler)
    verdicts = gate.verdicts(["MINT", "OK"])
    assert verdicts["MINT"].status == BLOCKED
    assert verdicts["OK"].status == UNKNOWN
    assert "liquidity lookup failed" in verdicts["OK"].reasons[0]
    assert not gate.lake.exists(TOKEN_SECURITY)  # incomplete facts are not cached


def test_without_an_api_key_every_token_is_unknown_and_nothing_is_asked(tmp_path: Path) -> None:
    fake = FakeBirdeye({}, {})
    config = Config()  # the real BirdEye URL, no key
    gate = SafetyGate(
        Lake(str(tmp_path / "lake")), config, None, transport=httpx.MockTransport(fake)
    )
    alerts = gate.apply([_alert("T")])
    assert alerts[0].safety is not None and alerts[0].safety.status == UNKNOWN
    assert "BIRDEYE_API_KEY is not set" in alerts[0].safety.reasons[0]
    assert not fake.calls


def test_exits_are_not_gated_and_a_disabled_gate_changes_nothing(tmp_path: Path) -> None:
    fake = FakeBirdeye({"T": {**EXAMPLE, "ownerAddress": "A"}}, {"T": 1e6})
    gate = _gate(tmp_path, fake, [NOW])
    (exit_alert,) = gate.apply([_alert("T", rule="exit")])
    assert exit_alert.safety is None and not fake.calls
    off = _gate(tmp_path, fake, [NOW], enabled=False)
    assert off.apply([_alert("T")]) == [_alert("T")] and not fake.calls


def test_a_blocked_alert_is_queued_blocked_never_due_and_replay_sends_it(tmp_path: Path) -> None:
    fake = FakeBirdeye(
        {"MINT": {**EXAMPLE, "ownerAddress": "A"}, "OK": EXAMPLE}, {"MINT": 1e6, "OK": 1e6}
    )
    gate = _gate(tmp_path, fake, [NOW])
    lake = gate.lake
    alerts = gate.apply([_alert("MINT"), _alert("OK")])
    assert outbox.enqueue(lake, alerts, ["slack", "telegram"], META, now=NOW) == 4
    rows = {(r["token_address"], r["channel"]): r for r in outbox.listing(lake)}
    assert rows[("MINT", "slack")]["state"] == outbox.BLOCKED
    assert rows[("MINT", "slack")]["safety_reasons"] == "mint authority A (BirdEye ownerAddress)"
    assert (rows[("OK", "slack")]["state"], rows[("OK", "slack")]["safety"]) == ("pending", PASSED)
    due = outbox.due(lake, ["slack", "telegram"], NOW + timedelta(days=1), 10)
    assert {r["token_address"] for r in due} == {"OK"}
    # raised again, a blocked alert stays as it is
    assert outbox.enqueue(lake, alerts, ["slack"], META, now=NOW) == 0
    blocked_id = alerts[0].id
    outbox.reopen(lake, blocked_id, META, "slack", now=NOW)
    assert {r["alert_id"] for r in outbox.due(lake, ["slack"], NOW, 10)} >= {blocked_id}
    # blocked rows expire with the retention, like sent ones
    assert outbox.expire(lake, 30, META, now=NOW + timedelta(days=31)) == 1


def test_raise_alerts_gates_buy_alerts_and_asks_nothing_without_channels(tmp_path: Path) -> None:
    from smarttrader_cli.alerts.evaluate import raise_alerts
    from smarttrader_cli.alerts.rules import RankedWallet

    fake = FakeBirdeye({"T": {**EXAMPLE, "freezeAuthority": "F"}}, {"T": 1e6})
    gate = _gate(tmp_path, fake, [NOW])
    config = Config()
    legs = [{"signature": "s", "wallet": "w", "direction": "buy", "token_address": "T",
             "value_usd": 5000.0, "event_time": NOW}]  # fmt: skip
    ranked = {"w": RankedWallet("elite", 1)}
    quiet = raise_alerts(gate.lake, config, legs, NOW, ranked, gate=gate)
    assert quiet.alerts[0].safety is None and not fake.calls
    config.alerts.channels = ["slack"]
    (alert,) = raise_alerts(gate.lake, config, legs, NOW, ranked, gate=gate, meta=META).alerts
    assert alert.safety is not None and alert.safety.reasons == ("freeze authority F",)


def test_a_gate_called_from_inside_an_event_loop_still_looks_up(tmp_path: Path) -> None:
    import asyncio

    fake = FakeBirdeye({"T": EXAMPLE}, {"T": 1e6})
    gate = _gate(tmp_path, fake, [NOW])

    async def caller() -> str:
        return gate.verdicts(["T"])["T"].status  # asyncio.run cannot nest: a thread runs it

    assert asyncio.run(caller()) == PASSED and fake.calls["/defi/token_security"] == 1
