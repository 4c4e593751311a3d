"""Swap legs read from the trading wallet's balances, on one Helius fixture per quirk.

Every expected amount below is worked out by hand from the fixture's accountData; the
comment next to it shows the arithmetic. Fixtures: tests/fixtures/helius/README.md.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smarttrader_cli.stream.balances import SOL_MINT
from smarttrader_cli.stream.swaps import SwapLeg, SwapParse, parse_swap, swap_legs

FIXTURES = Path(__file__).parents[2] / "fixtures" / "helius"

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
JUP = "JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN"
MASHA = "mae8vJGf8Wju8Ron1oDTQVaTGGBpcpWDwoRQJALMMf2"

MFDU = "MfDuWeqSHEqTFVYZ7LoexgAK9dxk7cy4DFJWjWMGVWa"  # the wallet of the RAYDIUM and ORCA captures
RAYDIUM_POOL = "3ucNos4NbumPLZNWztqGHNFFgkHeRMBQAVemeeomsUxv"


def load(name: str) -> dict[str, Any]:
    """The one event of a fixture's webhook body."""
    body = json.loads((FIXTURES / name).read_text())
    assert isinstance(body, list) and len(body) == 1
    event = body[0]
    assert isinstance(event, dict)
    return event


def legs_of(parse: SwapParse) -> list[tuple[int, str, str, int, int]]:
    """(leg, direction, mint, raw, decimals) of each leg, all owned by the parse's wallet."""
    assert all(leg.wallet == parse.wallet for leg in parse.legs)
    assert all(leg.parsed_from == "balances" for leg in parse.legs)
    return [(x.leg, x.direction, x.token_address, x.amount_raw, x.decimals) for x in parse.legs]


def ui(parse: SwapParse) -> list[float]:
    return [leg.amount for leg in parse.legs]


# --- the real captures ------------------------------------------------------------


def test_raydium_legs_go_to_the_wallet_not_the_pool() -> None:
    p = parse_swap(load("raydium_pool_user_account.json"))
    assert (p.outcome, p.wallet) == ("swap", MFDU)
    assert legs_of(p) == [
        # wallet -18,001 + 18,001 fee + wSOL account CTyF... -14,517,022,283 = -14.517022283 SOL
        (0, "sell", SOL_MINT, 14_517_022_283, 9),
        # token account 8VYW... (userAccount = wallet) +2,378,994,617 raw at 6 decimals
        (1, "buy", USDC, 2_378_994_617, 6),
    ]
    assert ui(p) == pytest.approx([14.517022283, 2378.994617])
    assert all(leg.wallet != RAYDIUM_POOL for leg in p.legs)
    assert p.sol_fees_lamports == 18_001  # the network fee, nothing else
    # events.swap credited the USDC to the pool: kept as a warning, never as a leg
    assert any(RAYDIUM_POOL in w and "tokenOutputs[0]" in w for w in p.warnings)


def test_orca_with_empty_events_object() -> None:
    p = parse_swap(load("orca_events_empty_object.json"))
    assert (p.outcome, p.wallet) == ("swap", MFDU)
    assert legs_of(p) == [
        # -30,511 native + 30,511 fee + wSOL account CTyF... -61,952,090,694 = -61.952090694 SOL
        (0, "sell", SOL_MINT, 61_952_090_694, 9),
        (1, "buy", USDC, 10_152_477_859, 6),  # 8VYW... +10,152,477,859 raw = 10,152.477859
    ]
    assert ui(p) == pytest.approx([61.952090694, 10152.477859])
    assert p.sol_fees_lamports == 30_511
    assert p.warnings == ()


def test_orca_token_to_token_tip_is_a_fee_not_a_leg() -> None:
    p = parse_swap(load("orca_tip_in_native_transfers.json"))
    assert (p.outcome, p.wallet) == ("swap", MFDU)
    token = "7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs"
    assert legs_of(p) == [
        (0, "sell", USDC, 117_529_128, 6),  # 8VYW... -117,529,128 raw = 117.529128 USDC
        (1, "buy", token, 3_939_432, 8),  # CFpa... +3,939,432 raw at 8 decimals = 0.03939432
    ]
    assert ui(p) == pytest.approx([117.529128, 0.03939432])
    # -9,240 native + 5,000 fee = -4,240 (the tip): below dust, SOL was not swapped
    assert p.sol_fees_lamports == 5_000 + 4_240
    assert p.warnings == ()


def test_pump_amm_buy_counts_third_party_sol_and_not_rent() -> None:
    p = parse_swap(load("pump_amm_buy.json"))
    assert (p.outcome, p.wallet) == ("swap", "DNfuF1L62WWyW3pNakVkyGGFzVVhj4Yr52jSmdTyeBHm")
    token = "9hWxtLoiCKz6BAKGzdCqTCE8w3ZkeMu2RBjiwDd5Vtuy"
    assert legs_of(p) == [
        # -20,262,269,285 native + 230,001 fee + 2,039,280 rent into the new token account 2u6Z...
        # = -20,260,000,004: 20.040000002 wSOL to the pool, 0.2 SOL to 9yMw..., and 0.020000002
        # more whose transfers the author trimmed; all of it the buy's cost
        (0, "sell", SOL_MINT, 20_260_000_004, 9),
        (1, "buy", token, 19_418_974_012_530, 6),  # 2u6Z... +19,418,974,012,530 raw
    ]
    assert ui(p) == pytest.approx([20.260000004, 19_418_974.01253])
    assert p.sol_fees_lamports == 230_001


def test_transfer_labelled_masha_buy_is_5_4_sol_not_10_8() -> None:
    p = parse_swap(load("transfer_system_wsol_wrap_close_buy.json"))
    assert (p.outcome, p.wallet) == ("swap", "5ngDQ3vMT7GHeFvXP5GLX79t6fqG2t15kyQTtst9zFdw")
    assert legs_of(p) == [
        # -5,400,010,807 native + 10,807 fee = -5.4 SOL; the temporary wSOL account CVN3... was
        # opened and closed in the tx (absent from accountData), its rent round trip nets out
        (0, "sell", SOL_MINT, 5_400_000_000, 9),
        # 8Eai... +42,165,652,308 raw = 42,509.983171 in - 344.330863 out to 45ru...
        (1, "buy", MASHA, 42_165_652_308, 6),
    ]
    assert ui(p) == pytest.approx([5.4, 42_165.652308])
    assert p.sol_fees_lamports == 10_807
    assert p.warnings == ()  # tokenTransfers net 42,509.983171 - 344.330863 agrees


def test_meteora_dbc_transfer_with_events_list() -> None:
    p = parse_swap(load("meteora_dbc_transfer_events_list.json"))
    assert (p.outcome, p.wallet) == ("swap", "5awoNsCULYySQaxHsGYxd9Xm7cr3GjyTZj8FmU4zsVEf")
    token = "GLZPY8BKvz4SskptWRpNZ29UJPmS9BYx1enRHUa9oSDx"
    assert legs_of(p) == [
        # -202,119,280 native + 80,000 fee + 2,039,280 rent into FPmr... = -200,000,000
        (0, "sell", SOL_MINT, 200_000_000, 9),
        (1, "buy", token, 322_281_812_767_019, 6),  # FPmr... +322,281,812,767,019 raw
    ]
    assert ui(p) == pytest.approx([0.2, 322_281_812.767019])
    assert p.sol_fees_lamports == 80_000
    assert p.warnings == ()


# --- written fixtures ---------------------------------------------------------------


def test_unknown_jupiter_route_nets_out_the_intermediate_token() -> None:
    p = parse_swap(load("unknown_jupiter_route.json"))
    assert (p.outcome, p.wallet) == ("swap", "CBi1xyqsd4nNFPzTWP6kuTopeKfpwwc7p3gbRcpAWcA7")
    assert legs_of(p) == [
        (0, "sell", SOL_MINT, 1_000_000_000, 9),  # -1,000,025,000 native + 25,000 fee = -1 SOL
        (1, "buy", BONK, 654_321_012_345, 5),  # +654,321,012,345 raw at 5 decimals
    ]  # USDC went in and out of the wallet's account: net "0", no leg
    assert ui(p) == pytest.approx([1.0, 6_543_210.12345])
    assert p.sol_fees_lamports == 25_000
    assert p.warnings == ()


def test_sell_with_wsol_unwrap_is_2_5_sol_not_5() -> None:
    p = parse_swap(load("sell_wsol_unwrap.json"))
    assert (p.outcome, p.wallet) == ("swap", "7AdtMEKm7tzd4AdG1kRarAyqFWfQDZc6dkPseKBUkHaL")
    assert legs_of(p) == [
        (0, "sell", BONK, 1_200_000_000_000, 5),  # -1,200,000,000,000 raw = 12,000,000 BONK
        # +2,501,934,280 native + 105,000 fee - 2,039,280 rent the closed wSOL account GbLU...
        # gave back = +2,500,000,000
        (1, "buy", SOL_MINT, 2_500_000_000, 9),
    ]
    assert ui(p) == pytest.approx([12_000_000.0, 2.5])
    assert p.sol_fees_lamports == 105_000
    assert p.warnings == ()  # events.swap (tokenInputs + nativeOutput) agrees


def test_sell_unwrap_with_a_zero_wsol_balance_entry_instead_of_transfers() -> None:
    event = load("sell_wsol_unwrap.json")
    wsol_account = "GbLULrs7T7PvH7ZhQCojWs3kH81Nf4tyjEWmQkt34p2K"
    event["tokenTransfers"] = []
    for item in event["accountData"]:
        if item["account"] == wsol_account:
            item["tokenBalanceChanges"] = [
                {
                    "userAccount": event["feePayer"],
                    "tokenAccount": wsol_account,
                    "mint": SOL_MINT,
                    "rawTokenAmount": {"tokenAmount": "0", "decimals": 9},
                }
            ]
    p = parse_swap(event)
    # same sum, the account now known from its balance entry: 2,501,934,280 + 105,000 - 2,039,280
    assert [(leg.direction, leg.token_address, leg.amount_raw) for leg in p.legs] == [
        ("sell", BONK, 1_200_000_000_000),
        ("buy", SOL_MINT, 2_500_000_000),
    ]


def test_token_to_token_with_dust_tip_has_no_sol_leg() -> None:
    p = parse_swap(load("token_to_token_dust_tip.json"))
    assert (p.outcome, p.wallet) == ("swap", "E2Md5FHdrw6hrtWAKZ8UUcDadBdnPGQvty1Nv7sMRen")
    assert legs_of(p) == [
        (0, "sell", USDC, 250_000_000, 6),  # -250,000,000 raw = 250 USDC
        (1, "buy", JUP, 312_500_000, 6),  # +312,500,000 raw = 312.5 JUP
    ]
    assert ui(p) == pytest.approx([250.0, 312.5])
    # -1,050,000 native + 50,000 fee = -1,000,000 tip < 10,000,000 dust: a fee
    assert p.sol_fees_lamports == 50_000 + 1_000_000
    assert p.warnings == ()


def test_a_sol_change_above_the_dust_limit_is_a_leg_even_token_to_token() -> None:
    p = parse_swap(load("token_to_token_dust_tip.json"), sol_dust_lamports=500_000)
    assert legs_of(p) == [  # sells sorted by mint: "EPjF..." < "So11...", then the buy
        (0, "sell", USDC, 250_000_000, 6),
        (1, "sell", SOL_MINT, 1_000_000, 9),  # the 1,000,000 tip now counts
        (2, "buy", JUP, 312_500_000, 6),
    ]
    assert p.sol_fees_lamports == 50_000  # only the network fee


def test_sol_below_the_dust_limit_is_a_leg_when_it_is_the_swapped_asset() -> None:
    # 5.4 SOL is under a 1,000 SOL "dust" limit, yet it is what paid for the MASHA
    event = load("transfer_system_wsol_wrap_close_buy.json")
    legs = swap_legs(event, sol_dust_lamports=10**12)
    assert [(leg.direction, leg.token_address, leg.amount_raw) for leg in legs] == [
        ("sell", SOL_MINT, 5_400_000_000),
        ("buy", MASHA, 42_165_652_308),
    ]


def test_a_tiny_sol_buy_is_still_a_swap() -> None:
    event = load("buy_new_token_account_rent.json")
    for item in event["accountData"]:
        if item["account"] == event["feePayer"]:
            item["nativeBalanceChange"] = -4_000_000 - 155_000 - 2_039_280
    p = parse_swap(event)
    # -6,194,280 + 155,000 fee + 2,039,280 rent = -4,000,000 < 10,000,000 dust, but SOL paid
    assert [(leg.direction, leg.token_address, leg.amount_raw) for leg in p.legs] == [
        ("sell", SOL_MINT, 4_000_000),
        ("buy", "G7NTv2mdzZV3AUo4bDxxy74qHQJf65f4NhP3BQQZpump", 17_857_142_857_142),
    ]
    assert p.sol_fees_lamports == 155_000


def test_failed_transaction_trades_nothing() -> None:
    p = parse_swap(load("failed_transaction.json"))
    assert (p.outcome, p.wallet, p.legs) == (
        "failed",
        "5g9umWh5dQj9fr9sD6kcbSJQeFCoZp77frtkGj7UnipR",
        [],
    )
    assert p.sol_fees_lamports == 30_000  # a failed tx still pays its fee


def test_failed_transaction_ignores_balances_it_reports() -> None:
    event = load("transfer_system_wsol_wrap_close_buy.json")
    event["transactionError"] = "custom program error: 0x1771"
    assert parse_swap(event).outcome == "failed"
    assert swap_legs(event) == []


def test_plain_sol_transfer_is_not_a_swap() -> None:
    p = parse_swap(load("plain_sol_transfer.json"))
    assert (p.outcome, p.wallet, p.legs) == (
        "not_a_swap",
        "24VuNN9BLhSqzpcJGi532eNXaUJkupW3dKQ7XPwrvybk",
        [],
    )
    assert p.sol_fees_lamports == 5_000  # the 1.5 SOL sent is not a fee


def test_empty_string_accounts_are_never_wallets() -> None:
    p = parse_swap(load("empty_string_accounts.json"))
    assert (p.outcome, p.wallet) == ("swap", "93X2H9wPpERqHkq4xycHejQ5jgC8aVEcuLngekQTA3gq")
    assert legs_of(p) == [
        (0, "sell", SOL_MINT, 500_000_000, 9),  # -500,015,000 native + 15,000 fee = -0.5 SOL
        (1, "buy", JUP, 1_234_567_890, 6),  # +1,234,567,890 raw = 1,234.56789 JUP
    ]
    assert p.warnings == ()  # the "" fee account and the minted transfer are not the wallet's


def test_without_a_fee_payer_two_swapping_accounts_mean_no_wallet() -> None:
    event = load("empty_string_accounts.json")
    event["feePayer"] = ""  # the wallet and the pool both gave one asset and got another
    p = parse_swap(event)
    assert (p.outcome, p.wallet, p.legs) == ("not_a_swap", None, [])
    assert any("no wallet chosen" in w for w in p.warnings)


def test_new_token_account_rent_is_not_cost_but_the_protocol_fee_is() -> None:
    p = parse_swap(load("buy_new_token_account_rent.json"))
    assert (p.outcome, p.wallet) == ("swap", "3KLStFc9gVvVxxfdn6WStck3bp4omYQsb2xr61Z2ZppR")
    token = "G7NTv2mdzZV3AUo4bDxxy74qHQJf65f4NhP3BQQZpump"
    assert legs_of(p) == [
        # -507,194,280 native + 155,000 fee + 2,039,280 rent into the new account EoKu...
        # = -505,000,000: 500,000,000 to the curve + 5,000,000 protocol fee
        (0, "sell", SOL_MINT, 505_000_000, 9),
        (1, "buy", token, 17_857_142_857_142, 6),
    ]
    assert ui(p) == pytest.approx([0.505, 17_857_142.857142])
    assert p.sol_fees_lamports == 155_000
    # events.swap leaves the protocol fee out of nativeInput: a warning, the leg keeps it
    assert p.warnings == (
        f"events.swap has the wallet sell 500000000 raw of {SOL_MINT}; balances say 505000000",
    )


# --- wallet choice, classification, odd values -------------------------------------


def _relayed_route(keep_pool_balances: bool) -> dict[str, Any]:
    """The Jupiter route with its fee paid by a relayer that trades nothing."""
    event = load("unknown_jupiter_route.json")
    wallet, relayer = event["feePayer"], "Re1ayer1111111111111111111111111111111111111"
    event["feePayer"] = relayer
    data = []
    for item in event["accountData"]:
        if item["account"] == wallet:
            item["nativeBalanceChange"] = -1_000_000_000  # the fee is now the relayer's
        owners = {c["userAccount"] for c in item["tokenBalanceChanges"]}
        if keep_pool_balances or not owners or owners == {wallet}:
            data.append(item)
    event["accountData"] = [{"account": relayer, "nativeBalanceChange": -25_000}, *data]
    return event


def test_wallet_is_the_only_swapper_when_the_fee_payer_moved_nothing() -> None:
    p = parse_swap(_relayed_route(keep_pool_balances=False))
    assert p.wallet == "CBi1xyqsd4nNFPzTWP6kuTopeKfpwwc7p3gbRcpAWcA7"
    assert [(leg.direction, leg.token_address, leg.amount_raw) for leg in p.legs] == [
        ("sell", SOL_MINT, 1_000_000_000),  # -1,000,000,000, no fee to add back: not its fee
        ("buy", BONK, 654_321_012_345),
    ]
    assert p.sol_fees_lamports == 0


def test_no_wallet_when_pools_also_look_like_swappers() -> None:
    p = parse_swap(_relayed_route(keep_pool_balances=True))
    assert (p.outcome, p.legs) == ("not_a_swap", [])
    assert p.wallet == "Re1ayer1111111111111111111111111111111111111"


def test_numbers_as_strings_read_the_same() -> None:
    event = load("raydium_pool_user_account.json")
    event["fee"] = str(event["fee"])
    for item in event["accountData"]:
        item["nativeBalanceChange"] = str(item["nativeBalanceChange"])
        for change in item["tokenBalanceChanges"]:
            change["rawTokenAmount"]["decimals"] = str(change["rawTokenAmount"]["decimals"])
    assert swap_legs(event) == swap_legs(load("raydium_pool_user_account.json"))


def test_two_token_accounts_of_one_mint_are_summed() -> None:
    event = load("unknown_jupiter_route.json")
    wallet = event["feePayer"]
    event["accountData"].append(  # a second BONK account of the wallet that lost 45,000,000,000 raw
        {
            "account": "SecondBonkAccount11111111111111111111111111",
            "nativeBalanceChange": 0,
            "tokenBalanceChanges": [
                {
                    "userAccount": wallet,
                    "tokenAccount": "SecondBonkAccount11111111111111111111111111",
                    "mint": BONK,
                    "rawTokenAmount": {"tokenAmount": "-45000000000", "decimals": 5},
                }
            ],
        }
    )
    legs = swap_legs(event)
    assert [(leg.direction, leg.token_address, leg.amount_raw) for leg in legs] == [
        ("sell", SOL_MINT, 1_000_000_000),
        ("buy", BONK, 609_321_012_345),  # 654,321,012,345 - 45,000,000,000
    ]


def test_got_only_is_not_a_swap() -> None:
    event = load("buy_new_token_account_rent.json")
    wallet = event["feePayer"]
    for item in event["accountData"]:
        if item["account"] == wallet:
            item["nativeBalanceChange"] = -155_000 - 2_039_280  # fee and rent only: an airdrop
    p = parse_swap(event)
    assert (p.outcome, p.legs, p.sol_fees_lamports) == ("not_a_swap", [], 155_000)


def test_the_contract_example_without_token_balances_is_not_a_swap() -> None:
    # API_CONTRACTS's documented example lists no tokenBalanceChanges for the BONK it bought:
    # balances show only SOL leaving, so no legs; events.swap's claim is a warning
    wallet = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    event = {
        "type": "SWAP",
        "fee": 5000,
        "feePayer": wallet,
        "accountData": [
            {"account": wallet, "nativeBalanceChange": -1000005000, "tokenBalanceChanges": []}
        ],
        "transactionError": None,
        "events": {
            "swap": {
                "nativeInput": {"account": wallet, "amount": "1000000000"},
                "tokenOutputs": [
                    {
                        "userAccount": wallet,
                        "mint": BONK,
                        "rawTokenAmount": {"tokenAmount": "4500000012345", "decimals": 5},
                    }
                ],
            }
        },
    }
    p = parse_swap(event)
    assert (p.outcome, p.wallet, p.legs) == ("not_a_swap", wallet, [])
    assert any(BONK in w and "balances say 0" in w for w in p.warnings)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"feePayer": "W"},
        {"feePayer": "W", "accountData": None},
        {"feePayer": "W", "accountData": []},
        {"feePayer": "W", "accountData": "[]"},
        {"feePayer": "W", "accountData": [None, 1, "x", []]},
        {"feePayer": "W", "accountData": [{}]},
        {"feePayer": "W", "accountData": [{"account": "W", "nativeBalanceChange": "lots"}]},
        {"feePayer": "W", "accountData": [{"account": "W", "nativeBalanceChange": 1.5}]},
        {"feePayer": "W", "accountData": [{"account": "W", "nativeBalanceChange": float("inf")}]},
        {"feePayer": "W", "accountData": [{"account": "W", "nativeBalanceChange": 10**80}]},
        {"feePayer": 7, "accountData": [{"account": 7, "nativeBalanceChange": -5000}]},
    ],
)
def test_nothing_to_read_is_no_balance_data(event: dict[str, Any]) -> None:
    p = parse_swap(event)
    assert (p.outcome, p.legs) == ("no_balance_data", [])


@pytest.mark.parametrize(
    "junk",
    [
        {"fee": "NaN"},
        {"fee": -5},
        {"fee": True},
        {"events": []},
        {"events": {"swap": []}},
        {"events": {"swap": {"tokenOutputs": "x", "nativeInput": 5}}},
        {"events": {"swap": {"tokenOutputs": [{"rawTokenAmount": "1"}]}}},
        {"tokenTransfers": {"mint": BONK}},
        {"tokenTransfers": [{"mint": BONK, "tokenAmount": "1e999", "toUserAccount": MFDU}]},
        {"tokenTransfers": [{"mint": [], "tokenAmount": None}]},
        {"instructions": [{"programId": ["x"], "innerInstructions": "y"}]},
        {"transactionError": {}},
        {"transactionError": ""},
        {"feePayer": ""},
        {"feePayer": None},
    ],
)
def test_odd_fields_never_raise(junk: dict[str, Any]) -> None:
    event = load("raydium_pool_user_account.json")
    event.update(junk)
    p = parse_swap(event)
    assert p.outcome in {"swap", "not_a_swap"}


def test_unreadable_token_entry_of_the_wallet_is_a_warning_not_a_leg() -> None:
    event = load("orca_events_empty_object.json")
    for item in event["accountData"]:
        for change in item["tokenBalanceChanges"]:
            if change["mint"] == USDC and change["userAccount"] == MFDU:
                change["rawTokenAmount"] = {"tokenAmount": "12.5", "decimals": 6}
    p = parse_swap(event)
    assert (p.outcome, p.legs) == ("not_a_swap", [])  # only the SOL side is left
    assert any("unreadable" in w for w in p.warnings)


# --- junk never raises --------------------------------------------------------------

_KEYS = [
    "accountData",
    "account",
    "nativeBalanceChange",
    "tokenBalanceChanges",
    "userAccount",
    "tokenAccount",
    "mint",
    "rawTokenAmount",
    "tokenAmount",
    "decimals",
    "feePayer",
    "fee",
    "transactionError",
    "events",
    "swap",
    "nativeInput",
    "nativeOutput",
    "tokenInputs",
    "tokenOutputs",
    "amount",
    "tokenTransfers",
    "fromUserAccount",
    "toUserAccount",
    "fromTokenAccount",
    "toTokenAccount",
    "instructions",
    "programId",
    "innerInstructions",
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["W", "", SOL_MINT, BONK, "-2039280", "5000", " 7 ", "1e9", "٣"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=40,
)


def _check_invariants(p: SwapParse) -> None:
    assert p.outcome in {"swap", "failed", "not_a_swap", "no_balance_data"}
    assert isinstance(p.sol_fees_lamports, int)
    assert all(isinstance(w, str) for w in p.warnings)
    if p.outcome != "swap":
        assert p.legs == []
        return
    assert p.wallet
    assert [leg.leg for leg in p.legs] == list(range(len(p.legs)))
    directions = [leg.direction for leg in p.legs]
    assert directions == sorted(directions, reverse=True)  # sells, then buys
    assert {"buy", "sell"} == set(directions)
    for leg in p.legs:
        assert isinstance(leg, SwapLeg)
        assert leg.wallet == p.wallet and leg.amount_raw > 0 and leg.amount > 0
        assert leg.amount == pytest.approx(leg.amount_raw / 10**leg.decimals)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), _JSON, max_size=8))
def test_random_dicts_never_raise(event: dict[str, Any]) -> None:
    _check_invariants(parse_swap(event))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


_FIXTURE_NAMES = sorted(p.name for p in FIXTURES.glob("*.json"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_FIXTURE_NAMES), st.data())
def test_fixtures_with_junk_spliced_in_never_raise(name: str, data: st.DataObject) -> None:
    event = copy.deepcopy(load(name))
    paths = _paths(event)
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(paths))
        parent: Any = event
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = data.draw(_JSON)
        paths = _paths(event)
        if not paths:
            break
    _check_invariants(parse_swap(event))


def test_every_fixture_is_covered() -> None:
    assert len(_FIXTURE_NAMES) == 13
    source = Path(__file__).read_text()
    assert all(f'"{name}"' in source for name in _FIXTURE_NAMES)
