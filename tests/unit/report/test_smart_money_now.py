"""`st gold report`'s "smart money now": the latest flows with USD and the latest alerts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from smarttrader_cli.alerts import outbox
from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.alerts.safety import BLOCKED, PASSED, Verdict
from smarttrader_cli.config.schema import Config
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_FLOWS
from smarttrader_cli.report import data
from smarttrader_cli.report.html import write_report

META = CommitMeta("r", "test", "h")
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
RUG = "RugToken1111111111111111111111111111111111"
WALLET = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def _lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    ranked = [{"wallet_address": WALLET, "rank": 1, "tier": "elite", "score": 0.9,
               "total_pnl": 100.0, "roi": 0.5, "win_rate": 0.6, "trade_count": 9}]  # fmt: skip
    lake.overwrite(SMART_WALLETS, pa.Table.from_pylist(ranked), META)
    return lake


def _flows(lake: Lake) -> None:
    rows = [
        {"token_address": BONK, "window_start": T0 - timedelta(hours=1), "window_minutes": 60,
         "buy_volume_usd": 900.0, "sell_volume_usd": 0.0, "net_flow_usd": 900.0,
         "smart_buyers": 1, "smart_sellers": 0, "unpriced_buy_count": 0, "unpriced_sell_count": 0},
        {"token_address": BONK, "window_start": T0, "window_minutes": 60,
         "buy_volume_usd": 12_345.5, "sell_volume_usd": 100.0, "net_flow_usd": 12_245.5,
         "smart_buyers": 3, "smart_sellers": 1, "unpriced_buy_count": 0, "unpriced_sell_count": 0},
        {"token_address": RUG, "window_start": T0, "window_minutes": 60,
         "buy_volume_usd": None, "sell_volume_usd": 0.0, "net_flow_usd": None,
         "smart_buyers": 2, "smart_sellers": 0, "unpriced_buy_count": 2, "unpriced_sell_count": 0},
    ]  # fmt: skip
    lake.overwrite(TOKEN_FLOWS, pa.Table.from_pylist(rows), META)


def _alerts(lake: Lake) -> tuple[Alert, Alert]:
    blocked = Verdict(BLOCKED, ("mint authority Auth1 (BirdEye ownerAddress)",), True)
    passed = Alert("wallet_buy", BONK, "s1:w", "bought BONK",
                   {"wallet": WALLET, "value_usd": 5000.0}, T0, Verdict(PASSED))  # fmt: skip
    rug = Alert("confluence", RUG, "30m@x", "3 wallets bought RUG",
                {"wallets": ["a", "b", "c", "d"], "value_usd": 7000.0}, T0 + timedelta(minutes=1),
                blocked)  # fmt: skip
    outbox.enqueue(lake, [passed], ["telegram", "slack"], META, now=T0)
    outbox.enqueue(lake, [rug], ["telegram", "slack"], META, now=T0 + timedelta(minutes=1))
    row = outbox.listing(lake, alert=passed.id, channel="telegram")[0]
    outbox.save(lake, [{**row, "state": outbox.SENT, "sent_at": T0}], META)
    return passed, rug


def test_the_latest_flows_and_alerts_are_read_newest_first(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    assert data.latest_flows(lake) == [] and data.latest_alerts(lake) == []
    _flows(lake)
    passed, rug = _alerts(lake)
    flows = data.latest_flows(lake, limit=2)
    assert [(f["token_address"], f["window_start"]) for f in flows] == [(BONK, T0), (RUG, T0)]
    alerts = data.latest_alerts(lake)
    assert [a["alert_id"] for a in alerts] == [rug.id, passed.id]
    assert alerts[1]["states"] == {"telegram": "sent", "slack": "pending"}
    assert alerts[0]["states"] == {"telegram": "blocked", "slack": "blocked"}
    assert (alerts[1]["wallets"], alerts[1]["value_usd"], alerts[1]["safety"]) == (
        [WALLET], 5000.0, PASSED,
    )  # fmt: skip
    assert len(data.latest_alerts(lake, limit=1)) == 1


def test_the_report_shows_smart_money_now_with_usd_verdicts_and_states(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    _flows(lake)
    _alerts(lake)
    out = tmp_path / "report.html"
    write_report(lake, Config(), out)
    page = out.read_text()
    section = page[page.index("<h2>Smart money now</h2>") :]
    section = section[: section.index("</section>")]
    assert "12,345.50" in section and "n/a (2 unpriced)" in section  # USD, or why not
    assert "2026-12-01 12:00 UTC · 60 min" in section
    assert "mint authority Auth1 (BirdEye ownerAddress)" in section
    assert "telegram sent" in section and "slack pending" in section
    assert "slack blocked · telegram blocked" in section and "4 wallets" in section
    assert re.search(r'class="l passed">passed<', section)


def test_empty_states_say_what_to_do(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    out = tmp_path / "report.html"
    write_report(lake, Config(), out)
    page = out.read_text()
    assert "No smart-money flows yet: <code>st gold flows</code>" in page
    assert "No alerts yet: configure <code>alerts.channels</code>" in page
    config = Config()
    config.alerts.channels = ["telegram"]
    write_report(lake, config, out)
    assert "No alerts yet: <code>st alerts run</code>" in out.read_text()
