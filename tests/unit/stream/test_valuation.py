"""USD values of real-time legs: quote leg, price table, snapshot, and unknown with a reason."""

from __future__ import annotations

from smarttrader_cli.stages.prices import NATIVE_SOL, WSOL, PriceBook
from smarttrader_cli.stream.swaps import SwapLeg
from smarttrader_cli.stream.valuation import value_legs

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
TOKEN, OTHER = (
    "Tok1111111111111111111111111111111111111111",
    "Oth1111111111111111111111111111111111111111",
)
QUOTES = frozenset({WSOL, USDC})
BOOK = PriceBook(900, frozenset({USDC}), {WSOL: ([1000, 1300], [150.0, 160.0])})


def leg(i: int, direction: str, token: str, amount: float) -> SwapLeg:
    return SwapLeg("W", i, direction, token, amount, round(amount * 10**6), 6, "balances")


def test_a_buy_with_sol_takes_the_sol_legs_value_at_the_event_time() -> None:
    legs = [leg(0, "sell", WSOL, 2.0), leg(1, "buy", TOKEN, 5000.0)]
    sol, tok = value_legs(legs, 1290, BOOK, {}, QUOTES)
    # nearest point to t=1290 is t=1300 at 160 USD: 2 SOL = 320 USD
    assert (sol.price_usd, sol.value_usd, sol.price_source) == (160.0, 320.0, "price_table")
    assert (tok.value_usd, tok.price_usd, tok.price_source) == (320.0, 320.0 / 5000, "quote_leg")


def test_stablecoins_are_one_dollar_and_a_sell_takes_their_value() -> None:
    legs = [leg(0, "sell", TOKEN, 10.0), leg(1, "buy", USDC, 42.5)]
    tok, usd = value_legs(legs, 5, BOOK, {}, QUOTES)
    assert (usd.value_usd, usd.price_source) == (42.5, "stablecoin")
    assert (tok.value_usd, tok.price_source) == (42.5, "quote_leg")


def test_a_stale_sol_price_leaves_both_legs_unknown_with_the_reason() -> None:
    legs = [leg(0, "sell", WSOL, 1.0), leg(1, "buy", TOKEN, 7.0)]
    sol, tok = value_legs(legs, 1300 + 901, BOOK, {TOKEN: 3.0}, QUOTES)
    assert sol.value_usd is None and "no price within 900 s" in (sol.unpriced_reason or "")
    assert tok.value_usd is None and tok.unpriced_reason.startswith("its quote leg has no price")


def test_token_to_token_uses_known_prices_or_says_there_is_none() -> None:
    legs = [leg(0, "sell", TOKEN, 4.0), leg(1, "buy", OTHER, 9.0)]
    tok, other = value_legs(legs, 1000, BOOK, {TOKEN: 2.0}, QUOTES)
    assert (tok.value_usd, tok.price_source) == (8.0, "token_snapshot")
    assert other.value_usd is None and "no known price" in (other.unpriced_reason or "")


def test_native_sol_is_priced_as_wsol() -> None:
    assert BOOK.price_at(NATIVE_SOL, 1000) == (150.0, "price_table")
    assert PriceBook(900).price_at(WSOL, 1)[0] is None


def test_sol_for_usdc_takes_the_stablecoins_exact_value() -> None:
    legs = [leg(0, "sell", WSOL, 2.0), leg(1, "buy", USDC, 311.0)]
    sol, usd = value_legs(legs, 1000, BOOK, {}, QUOTES)
    # the price table says 300 USD; the swap itself says the 2 SOL fetched 311 USDC
    assert (usd.value_usd, usd.price_source) == (311.0, "stablecoin")
    assert (sol.value_usd, sol.price_usd, sol.price_source) == (311.0, 155.5, "quote_leg")
