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
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_METRICS, WEBHOOK_SWAPS
from smarttrader_cli.stream.parse import SOL_MINT, SwapLeg, swap_legs
from tests.conftest import write_config
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
        {"account": WALLET, "nativeBalanceChange": -1000005000, "tokenBalanceChanges": []}
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


def test_contract_example_gives_a_sol_sell_and_a_bonk_buy() -> None:
    assert swap_legs(CONTRACT_EXAMPLE) == [
        SwapLeg(WALLET, 0, "sell", SOL_MINT, 1.0, "events.swap"),
        SwapLeg(WALLET, 1, "buy", BONK, 45000000.12345, "events.swap"),
    ]


@pytest.mark.parametrize("events", [{}, {"swap": {}}, {"swap": None}, None])
def test_without_a_parsed_swap_the_transfers_give_the_fee_payers_net_change(events: Any) -> None:
    event = copy.deepcopy(CONTRACT_EXAMPLE)
    event["events"] = events
    # the SOL leg shows up twice (wrapped token transfer and native transfer): nets to 2 SOL given
    legs = swap_legs(event)
    assert [(leg.direction, leg.token_address) for leg in legs] == [
        ("sell", SOL_MINT),
        ("buy", BONK),
    ]
    assert legs[0].amount == pytest.approx(2.0)
    assert legs[1].amount == pytest.approx(45000000.12345)
    assert {leg.parsed_from for leg in legs} == {"transfers"}


def test_token_to_token_swap_and_native_output() -> None:
    event = copy.deepcopy(CONTRACT_EXAMPLE)
    event["events"]["swap"] = {
        "nativeInput": None,
        "nativeOutput": {"account": WALLET, "amount": "250000000"},
        "tokenInputs": [
            {
                "userAccount": WALLET,
                "mint": BONK,
                "rawTokenAmount": {"tokenAmount": "100000", "decimals": 5},
            }
        ],
        "tokenOutputs": [],
    }
    assert swap_legs(event) == [
        SwapLeg(WALLET, 0, "sell", BONK, 1.0, "events.swap"),
        SwapLeg(WALLET, 1, "buy", SOL_MINT, 0.25, "events.swap"),
    ]


def test_failed_transactions_and_plain_transfers_have_no_legs() -> None:
    failed = dict(CONTRACT_EXAMPLE, transactionError={"InstructionError": [0, "Custom"]})
    assert swap_legs(failed) == []
    transfer = dict(CONTRACT_EXAMPLE, events={}, tokenTransfers=[], type="TRANSFER")
    assert swap_legs(transfer) == []  # only SOL left the wallet: not an exchange


def test_malformed_fields_are_skipped_not_crashed_on() -> None:
    event = copy.deepcopy(CONTRACT_EXAMPLE)
    event["events"]["swap"]["nativeInput"] = {"account": WALLET, "amount": "lots"}
    event["events"]["swap"]["tokenOutputs"].append({"mint": None})
    legs = swap_legs(event)
    assert [(leg.direction, leg.token_address) for leg in legs] == [("buy", BONK)]


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
                {"token_address": SOL_MINT, "snapshot_at": now, "price": 150.0},
                {"token_address": BONK, "snapshot_at": now, "price": 0.00002},
            ]
        ),
        meta,
    )
    lake.append(SMART_WALLETS, pa.Table.from_pylist([{"wallet_address": WALLET, "rank": 1}]), meta)
    other = dict(copy.deepcopy(CONTRACT_EXAMPLE), signature="6" * 88, feePayer="Other111")
    other["events"]["swap"]["nativeInput"]["account"] = "Other111"
    other["events"]["swap"]["tokenOutputs"][0]["userAccount"] = "Other111"
    produce(config, outbound([CONTRACT_EXAMPLE, other]))
    runner = CliRunner()
    assert runner.invoke(st_app, ["--config", str(config), "stream", "drain"]).exit_code == 0

    first = runner.invoke(st_app, ["--config", str(config), "silver", "webhooks", "-f", "json"])
    assert first.exit_code == 0, first.output
    assert orjson.loads(first.stdout)[0]["legs"] == 4
    rows = {(r["signature"][:1], r["leg"]): r for r in lake.read(WEBHOOK_SWAPS).to_pylist()}
    assert rows[("5", 0)]["value_usd"] == pytest.approx(150.0)
    assert rows[("5", 1)]["value_usd"] == pytest.approx(900.000002469)
    assert rows[("5", 0)]["is_smart_wallet"] is True and rows[("6", 0)]["is_smart_wallet"] is False
    assert rows[("5", 1)]["event_time"] == datetime.fromtimestamp(1711900800, UTC)

    again = runner.invoke(st_app, ["--config", str(config), "silver", "webhooks", "-f", "json"])
    assert orjson.loads(again.stdout)[0]["inserted"] == 0
    full = runner.invoke(
        st_app, ["--config", str(config), "silver", "webhooks", "--full-refresh", "-f", "json"]
    )
    assert orjson.loads(full.stdout)[0]["inserted"] == 0
    assert lake.read(WEBHOOK_SWAPS).num_rows == 4
