"""Property: the DuckDB engine equals the deque-based oracle on random trade histories,
in silver.wallet_pnl and in every PnL window."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pnl_oracle import oracle_pnl, oracle_windows
from tests.pnl_support import (
    FETCHED,
    QUOTES,
    SOL,
    T0,
    USDC,
    assert_matches,
    assert_windows_match,
    engine_result,
    engine_rows,
    trade,
    windows_by_key,
)

TOKENS = ["TokA", "TokB", "TokC"]
ASSETS = [*TOKENS, SOL, USDC]

amounts = st.one_of(
    st.sampled_from([0.1, 0.2, 0.3, 1.0, 2.5, 10.0, 100.0]),
    st.floats(min_value=1e-6, max_value=1e7, allow_nan=False, allow_infinity=False),
)
prices = st.one_of(
    st.none(),
    st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    st.floats(min_value=1e-8, max_value=1e4, allow_nan=False, allow_infinity=False),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    n = draw(st.integers(min_value=1, max_value=40))
    rows = []
    for i in range(n):
        wallet = draw(st.sampled_from(["W1", "W2", "W3"]))
        give = draw(st.sampled_from(ASSETS))
        get = draw(st.sampled_from([a for a in ASSETS if a != give]))
        t = T0 + draw(st.integers(min_value=0, max_value=30)) * draw(
            st.sampled_from([60, 3600, 86400])
        )
        rows.append(
            trade(
                wallet,
                f"tx{draw(st.integers(0, 5))}-{i}",
                t,
                (give, draw(amounts), draw(prices)),
                (get, draw(amounts), draw(prices)),
                ins=draw(st.integers(0, 2)),
            )
        )
    metrics = [
        {"token_address": tok, "snapshot_at": FETCHED, "price": draw(prices)}
        for tok in draw(st.lists(st.sampled_from(TOKENS), unique=True))
    ]
    return rows, metrics


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_duckdb_engine_equals_oracle(history: tuple[list[dict[str, Any]], list[dict[str, Any]]]):
    trades, metrics = history
    assert_matches(engine_rows(trades, metrics), oracle_pnl(trades, metrics, QUOTES), trades)


@settings(max_examples=30, deadline=None)
@given(histories(), st.sampled_from([0.5, 5.0, 100.0]))
def test_dust_floor_equals_oracle(
    history: tuple[list[dict[str, Any]], list[dict[str, Any]]], floor: float
):
    trades, metrics = history
    assert_matches(
        engine_rows(trades, metrics, min_leg_usd=floor),
        oracle_pnl(trades, metrics, QUOTES, min_leg_usd=floor),
        trades,
    )


WINDOW_SETS = [("1d", "7d", "30d", "all"), ("1h", "2d", "all"), ("12h", "24h"), ("all",)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.sampled_from(WINDOW_SETS),
    st.integers(min_value=0, max_value=31),
    st.sampled_from([60, 3600, 86400]),
    st.sampled_from([-1, 0, 1]),
    st.sampled_from([0.0, 5.0]),
)
def test_windows_equal_oracle(
    history: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    windows: tuple[str, ...],
    steps: int,
    step: int,
    nudge: int,
    floor: float,
):
    """Windows ending anywhere in (or after) the history, edges hit exactly and by a second."""
    trades, metrics = history
    as_of = T0 + steps * step + nudge
    got = engine_result(trades, metrics, min_leg_usd=floor, windows=windows, as_of=as_of)
    want = oracle_windows(trades, metrics, QUOTES, floor, windows, as_of)
    assert_windows_match(windows_by_key(got.windows), want, trades)
