"""`st alerts run` over a real lake: new buys since its cursor raise alerts once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.alerts import outbox
from smarttrader_cli.config.loader import Secrets
from smarttrader_cli.config.schema import Config
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import ALERTS, SMART_WALLETS, WEBHOOK_SWAPS
from smarttrader_cli.stages.alerts import run
from smarttrader_cli.stages.contract import StageContext

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
META = CommitMeta("seed", "test", "h")
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def _ctx(tmp_path: Path, **rules: Any) -> StageContext:
    config = Config()
    config.runtime.state_dir = str(tmp_path / "state")
    config.alerts.channels = ["slack"]
    config.alerts.rules.wallet_buy.min_usd = 1000
    config.alerts.rules.confluence.min_wallets = 2
    for k, v in rules.items():
        setattr(config.alerts.rules.wallet_buy, k, v)
    # a closed port: delivery fails fast and the alerts stay pending
    secrets = Secrets(slack_webhook_url="http://127.0.0.1:9/hook")
    return StageContext(config, Lake(str(tmp_path / "lake")), secrets, "h")


def _swaps(lake: Lake, legs: list[tuple[str, str, str, float, int]], side: str = "buy") -> None:
    rows = [
        {"signature": sig, "wallet": wallet, "leg": i, "direction": side,
         "token_address": token, "value_usd": usd, "is_smart_wallet": True,
         "event_time": NOW - timedelta(minutes=ago)}
        for i, (sig, wallet, token, usd, ago) in enumerate(legs)
    ]  # fmt: skip
    lake.merge(WEBHOOK_SWAPS, pa.Table.from_pylist(rows), META)


def _seed(lake: Lake) -> None:
    wallets = [
        {"wallet_address": "w1", "tier": "elite", "rank": 1},
        {"wallet_address": "w2", "tier": "strong", "rank": 2},
        {"wallet_address": "w3", "tier": "promising", "rank": 3},
    ]
    lake.overwrite(SMART_WALLETS, pa.Table.from_pylist(wallets), META)


def _alerts(lake: Lake) -> set[tuple[str, str]]:
    return {(r["rule"], r["alert_key"]) for r in outbox.listing(lake)}


def test_new_buys_raise_alerts_once_and_a_rerun_raises_nothing(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _seed(ctx.lake)
    _swaps(ctx.lake, [("s1", "w1", "BONK", 5000, 10), ("s2", "w2", USDC, 9000, 9),
                      ("s3", "w3", "BONK", 200, 5), ("s4", "nobody", "BONK", 9000, 4),
                      ("s5", "w2", "OLD", 9000, 600)])  # fmt: skip
    first = run(ctx, now=NOW)
    assert _alerts(ctx.lake) == {("wallet_buy", "s1:w1"), ("confluence", "30m@2026-11-01T11:30")}
    assert first.details["queued"] == 2 and first.details["retried"] == 1  # the port is closed
    assert run(ctx, now=NOW).details["queued"] == 0  # nothing new since the cursor

    _swaps(ctx.lake, [("s6", "w2", "WIF", 1500, 1), ("s7", "w2", "SOLX", 10, 1)])
    third = run(ctx, now=NOW)
    assert third.details["buys"] == 2 and third.details["queued"] == 1
    assert ("wallet_buy", "s6:w2") in _alerts(ctx.lake)
    assert ctx.lake.read(ALERTS).num_rows == 3

    # w1 sells the BONK it was alerted buying; w3 sells BONK it was not
    _swaps(ctx.lake, [("s8", "w1", "BONK", 800, 0), ("s9", "w3", "BONK", 800, 0)], side="sell")
    assert run(ctx, now=NOW).details["queued"] == 1
    assert ("exit", "s8:w1") in _alerts(ctx.lake)


def test_a_rule_matching_everything_queues_each_buy_once(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, min_usd=0, tiers=["elite", "strong", "promising"])
    ctx.config.alerts.rules.confluence.enabled = False
    _seed(ctx.lake)
    legs = [(f"s{i}", f"w{1 + i % 3}", f"T{i}", 1.0, i) for i in range(30)]
    _swaps(ctx.lake, legs)
    assert run(ctx, now=NOW).details["queued"] == 30
    _swaps(ctx.lake, legs)  # silver rewrites the same legs (a re-parse): read again, raised once
    again = run(ctx, now=NOW)
    assert (again.details["buys"], again.details["queued"]) == (30, 0)


def test_without_ranked_wallets_nothing_matches(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, min_usd=0)
    _swaps(ctx.lake, [("s1", "w1", "BONK", 5000, 10)])
    result = run(ctx, now=NOW)
    assert (result.details["buys"], result.details["queued"]) == (0, 0)


def test_a_vacuum_between_planning_and_reading_the_new_buys_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving the schedule test met: `st ops cleanup` compacts and vacuums (0 h
    retention) silver.webhook_swaps after `st alerts run` planned which files to read."""
    from smarttrader_cli.lake import changes

    ctx = _ctx(tmp_path)
    ctx.config.alerts.rules.confluence.enabled = False
    _seed(ctx.lake)
    _swaps(ctx.lake, [("s1", "w1", "BONK", 5000, 10)])
    run(ctx, now=NOW)
    _swaps(ctx.lake, [("s2", "w2", "WIF", 5000, 5)])
    _swaps(ctx.lake, [("s3", "w1", "POPCAT", 5000, 4)])
    ctx.lake.optimize(WEBHOOK_SWAPS)  # s2's and s3's files folded into one with s1
    planned = changes.since_cursor

    def plan_then_vacuum(*args: Any) -> changes.SinceCursor:
        since = planned(*args)
        ctx.lake.vacuum(WEBHOOK_SWAPS, retention_hours=0, dry_run=False)
        return since

    monkeypatch.setattr(changes, "since_cursor", plan_then_vacuum)
    result = run(ctx, now=NOW)
    assert result.details["buys"] == 3 and result.details["queued"] == 2  # s1 read again
    assert _alerts(ctx.lake) == {("wallet_buy", f"{s}:{w}") for s, w in
                                 [("s1", "w1"), ("s2", "w2"), ("s3", "w1")]}  # fmt: skip
