"""Swap legs from Helius payloads, and the silver.webhook_swaps stage over a real lake."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app as st_app
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_METRICS, TOKEN_PRICES, WEBHOOK_SWAPS
from smarttrader_cli.stream.balances import SOL_MINT
from tests.harness import write_config
from tests.stream_support import lake_for, outbound, produce

WALLET = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
POOL = "5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"

CONTRACT_EXAMPLE: dict[str, Any] = {
    "description": "swapped 1 SOL for 45000000.12345 Bonk",
    "type": "SWAP",
    "source": "JUPITER",
    "fee": 5000,
    "feePayer": WALLET,
    "signature": "5" * 88,
    "slot": 250000000,
    "timestamp": 1711900800,
    "nativeTransfers": [{"fromUserAccount": WALLET, "toUserAccount": POOL, "amount": 1000000000}],
    "tokenTransfers": [
        {"fromUserAccount": WALLET, "toUserAccount": POOL, "tokenAmount": 1, "mint": SOL_MINT},
        {
            "fromUserAccount": POOL,
            "toUserAccount": WALLET,
            "tokenAmount": 45000000.12345,
            "mint": BONK,
        },
    ],
    "accountData": [
        {"account": WALLET, "nativeBalanceChange": -1000005000, "tokenBalanceChanges": []},
        {
            "account": "acc",
            "nativeBalanceChange": 0,
            "tokenBalanceChanges": [
                {
                    "userAccount": WALLET,
                    "tokenAccount": "acc",
                    "mint": BONK,
                    "rawTokenAmount": {"tokenAmount": "4500000012345", "decimals": 5},
                }
            ],
        },
    ],
    "transactionError": None,
    "instructions": [],
    "events": {
        "swap": {
            "nativeInput": {"account": WALLET, "amount": "1000000000"},
            "nativeOutput": None,
            "tokenInputs": [],
            "tokenOutputs": [
                {
                    "userAccount": WALLET,
                    "tokenAccount": "acc",
                    "mint": BONK,
                    "rawTokenAmount": {"tokenAmount": "4500000012345", "decimals": 5},
                }
            ],
            "tokenFees": [],
            "nativeFees": [],
            "innerSwaps": [],
        }
    },
}


def test_silver_webhooks_is_incremental_idempotent_priced_and_flags_smart_wallets(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    lake = lake_for(config)
    meta = CommitMeta("seed", "test", "h")
    now = datetime.now(UTC)
    lake.append(
        TOKEN_METRICS,
        pa.Table.from_pylist(
            [
                {"token_address": SOL_MINT, "snapshot_at": now, "price": 999.0},
                {"token_address": BONK, "snapshot_at": now, "price": 0.00002},
            ]
        ),
        meta,
    )
    # SOL at the events' time (1711900800) from the price table, not the snapshot's 999
    lake.append(
        TOKEN_PRICES,
        pa.Table.from_pylist(
            [{"token_address": SOL_MINT, "unix_time": 1711900500, "price_usd": 150.0}]
        ),
        meta,
    )
    lake.append(SMART_WALLETS, pa.Table.from_pylist([{"wallet_address": WALLET, "rank": 1}]), meta)
    other = dict(copy.deepcopy(CONTRACT_EXAMPLE), signature="6" * 88, feePayer="Other111")
    other["events"]["swap"]["nativeInput"]["account"] = "Other111"
    other["events"]["swap"]["tokenOutputs"][0]["userAccount"] = "Other111"
    other["accountData"][0]["account"] = "Other111"
    other["accountData"][1]["tokenBalanceChanges"][0]["userAccount"] = "Other111"
    produce(config, outbound([CONTRACT_EXAMPLE, other]))
    runner = CliRunner()
    assert runner.invoke(st_app, ["--config", str(config), "stream", "drain"]).exit_code == 0

    first = runner.invoke(st_app, ["--config", str(config), "silver", "webhooks", "-f", "json"])
    assert first.exit_code == 0, first.output
    assert orjson.loads(first.stdout)[0]["legs"] == 4
    rows = {(r["signature"][:1], r["leg"]): r for r in lake.read(WEBHOOK_SWAPS).to_pylist()}
    # 1 SOL (-1,000,005,000 native + 5,000 fee) at 150 USD; the BONK leg takes its value
    assert rows[("5", 0)]["amount"] == 1.0 and rows[("5", 0)]["value_usd"] == pytest.approx(150.0)
    assert rows[("5", 0)]["price_source"] == "price_table"
    assert (
        rows[("5", 1)]["amount"] == 45000000.12345
        and rows[("5", 1)]["amount_raw"] == "4500000012345"
    )
    assert rows[("5", 1)]["value_usd"] == pytest.approx(150.0)
    assert rows[("5", 1)]["price_source"] == "quote_leg"
    assert rows[("5", 0)]["is_smart_wallet"] is True and rows[("6", 0)]["is_smart_wallet"] is False
    assert rows[("5", 1)]["event_time"] == datetime.fromtimestamp(1711900800, UTC)

    again = runner.invoke(st_app, ["--config", str(config), "silver", "webhooks", "-f", "json"])
    assert orjson.loads(again.stdout)[0]["inserted"] == 0
    full = runner.invoke(
        st_app, ["--config", str(config), "silver", "webhooks", "--full-refresh", "-f", "json"]
    )
    assert orjson.loads(full.stdout)[0]["legs"] == 4  # parsed again, table replaced
    assert lake.read(WEBHOOK_SWAPS).num_rows == 4
