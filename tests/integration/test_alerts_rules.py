"""`st alerts run` end to end: smart buys in the lake -> rules -> a fake Telegram server."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from smarttrader_cli.alerts import outbox
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import SMART_WALLETS, WEBHOOK_SWAPS
from tests.integration.test_alerts_delivery import ST, FakeChannel, _setup

META = CommitMeta("seed", "test", "h")
SOL = "So11111111111111111111111111111111111111112"


def test_alerts_run_raises_each_alert_once_and_delivers_it(tmp_path: Path) -> None:
    telegram = FakeChannel("telegram").start()
    env = _setup(tmp_path, {"telegram": telegram}, **{"alerts.rules.confluence.min_wallets": 2})
    lake = Lake(str(tmp_path / "lake"))
    wallets = [{"wallet_address": f"w{i}", "tier": "elite", "rank": i} for i in range(3)]
    lake.overwrite(SMART_WALLETS, pa.Table.from_pylist(wallets), META)
    now = datetime.now(UTC)
    legs = [  # (signature, wallet, token, usd): the fake server reads the [kN] in each text
        ("[k1]", "w0", "BONK", 5000.0),
        ("[k2]", "w1", "BONK", 4000.0),
        ("[k3]", "w2", SOL, 9000.0),  # SOL is what it pays with: never an alert
    ]
    rows = [
        {"signature": sig, "wallet": w, "leg": 0, "direction": "buy", "token_address": token,
         "value_usd": usd, "is_smart_wallet": True, "event_time": now - timedelta(minutes=5)}
        for sig, w, token, usd in legs
    ]  # fmt: skip
    lake.merge(WEBHOOK_SWAPS, pa.Table.from_pylist(rows), META)
    try:
        for _ in range(2):  # the second run finds nothing new
            done = subprocess.run(
                [str(ST), "alerts", "run", "--format", "json"],
                env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        (second,) = json.loads(done.stdout)
        assert (second["queued"], second["sent"]) == (0, 0)
    finally:
        telegram.stop()
    confluence = [text for text in telegram.received if text.startswith("2 smart wallets")]
    assert telegram.received == Counter({"k1": 1, "k2": 1, **{t: 1 for t in confluence}})
    assert len(confluence) == 1 and "bought BONK within 30 minutes" in confluence[0]
    states = Counter((r["rule"], r["state"]) for r in outbox.listing(lake))
    assert states == Counter({("wallet_buy", "sent"): 2, ("confluence", "sent"): 1})
