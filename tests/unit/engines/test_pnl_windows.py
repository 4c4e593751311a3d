"""PnL windows at their edges: boundaries, cost from before the window, empty windows,
unpriced legs, the 'all' window against silver.wallet_pnl, config and run planning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smarttrader_cli.engines.pnl_common import (
    PnlParams,
    WindowState,
    plan_run,
    resolve_as_of,
    window_bands,
)
from smarttrader_cli.engines.pnl_windows import parse_windows, window_problem
from tests.pnl_oracle import oracle_windows
from tests.pnl_support import (
    QUOTES,
    T0,
    USDC,
    assert_windows_match,
    buy,
    engine_result,
    rows_by_key,
    sell,
    trade,
    windows_by_key,
)

H, D = 3600, 86400
END = T0 + 40 * D


def _docs_example() -> list[dict]:
    """docs/pnl.md §6's history of wallet W in token T."""
    return [
        buy("W", "a", T0, "T", 100.0, 1.0),
        buy("W", "b", T0 + H, "T", 50.0, 2.0),
        sell("W", "c", T0 + 3 * H, "T", 120.0, 3.0),
        sell("W", "d", T0 + 5 * H, "T", 50.0, 1.5),
        buy("W", "e", T0 + 6 * H, "T", 10.0, 3.0),
    ]


def _windows(trades, windows=("1d", "7d", "all"), as_of=END, metrics=()):
    got = engine_result(trades, metrics, windows=windows, as_of=as_of)
    want = oracle_windows(trades, metrics, QUOTES, 0.0, windows, as_of)
    table = windows_by_key(got.windows)
    assert_windows_match(table, want, trades)
    return table, got


def test_a_sell_exactly_one_window_before_the_end_is_out_and_one_at_the_end_is_in():
    trades = [
        buy("W", "b", END - 3 * D, "T", 30.0, 1.0),
        sell("W", "edge", END - D, "T", 10.0, 2.0),  # start is exclusive
        sell("W", "in", END - D + 1, "T", 10.0, 3.0),
        sell("W", "end", END, "T", 10.0, 4.0),  # end is inclusive
    ]
    got, _ = _windows(trades)
    day = got[("W", "T", "1d")]
    assert (day["sell_count"], day["realized_pnl"], day["buy_count"]) == (2, 20.0 + 30.0, 0)
    assert day["window_start"] == datetime.fromtimestamp(END - D, UTC)
    assert day["window_end"] == datetime.fromtimestamp(END, UTC)
    assert got[("W", "T", "7d")]["realized_pnl"] == 10.0 + 20.0 + 30.0
    assert got[("W", "T", "all")]["window_start"] is None


def test_a_sell_in_the_window_keeps_the_cost_of_lots_bought_long_before():
    trades = [
        buy("W", "old", END - 20 * D, "T", 10.0, 1.0),
        buy("W", "mid", END - 3 * D, "T", 10.0, 5.0),
        sell("W", "s", END - H, "T", 15.0, 4.0),  # 10 at cost 1, 5 at cost 5
    ]
    got, _ = _windows(trades)
    day = got[("W", "T", "1d")]
    assert day["matched_cost"] == 10.0 * 1.0 + 5.0 * 5.0
    assert day["realized_pnl"] == 60.0 - 35.0
    assert (day["total_bought"], day["buy_count"], day["closed_positions"]) == (0.0, 0, 1)
    assert day["basis_coverage"] == 1.0 and day["win_rate"] == 1.0
    # 5 units still open at the last price (4.0): the position at the windows' end
    assert day["unrealized_pnl"] == 5 * 4.0 - 5 * 5.0
    assert day["roi"] == pytest.approx((25.0 - 5.0) / (35.0 + 25.0))


def test_a_window_without_trades_has_its_row_with_zeros():
    trades = [
        buy("W", "b", END - 10 * D, "T", 10.0, 1.0),
        sell("W", "s", END - 9 * D, "T", 4.0, 2.0),
    ]
    got, _ = _windows(trades)
    for token in ("T", "ALL_TOKENS"):
        day = got[("W", token, "1d")]
        assert (day["trade_count"], day["realized_pnl"], day["volume_usd"]) == (0, 0.0, 0.0)
        assert day["win_rate"] is None and day["basis_coverage"] is None
        assert day["closed_positions"] == 0
    assert got[("W", "T", "7d")]["trade_count"] == 0
    assert got[("W", "T", "all")]["closed_positions"] == 1


def test_tokens_from_an_unpriced_buy_sold_in_the_window_have_no_basis():
    trades = [
        buy("W", "free", END - 5 * D, "T", 10.0, None),  # unpriced: opens no lot
        buy("W", "paid", END - 5 * D + 1, "U", 10.0, 1.0),
        sell("W", "s", END - H, "T", 10.0, 3.0),
        sell("W", "u", END - H, "U", 10.0, 1.5),
    ]
    got, _ = _windows(trades)
    day = got[("W", "T", "1d")]
    assert (day["realized_pnl"], day["matched_qty"], day["basis_coverage"]) == (0.0, 0.0, 0.0)
    assert day["closed_positions"] == 0 and day["win_rate"] is None
    wallet = got[("W", "ALL_TOKENS", "1d")]
    assert wallet["basis_coverage"] == pytest.approx(15.0 / 45.0)  # USD-weighted
    assert wallet["closed_positions"] == 1 and wallet["sold_qty"] is None


def test_the_all_window_is_silver_wallet_pnl():
    trades = [*_docs_example(), trade("V", "f", T0, ("T", 5.0, None), (USDC, 5.0, 1.0))]
    got, result = _windows(trades, as_of=T0 + 6 * H, metrics=[])
    pnl = rows_by_key(result.rows)
    same = ("realized_pnl", "unrealized_pnl", "total_pnl", "trade_count", "buy_count",
            "sell_count", "winning_sells", "win_rate", "roi", "total_bought", "total_sold",
            "matched_cost")  # fmt: skip
    for (wallet, token), row in pnl.items():
        window = got[(wallet, token, "all")]
        assert {c: window[c] for c in same} == {c: row[c] for c in same}, (wallet, token)


def test_window_names_are_checked():
    assert window_problem(["1d", "12h", "all"]) is None
    assert "window twice" in str(window_problem(["1d", "1d"]))
    for bad in (["0d"], ["7w"], ["-1d"], ["1.5d"], [], ["ALL"]):
        assert window_problem(bad) is not None, bad
    assert [w.seconds for w in parse_windows(["12h", "all", "7d"])] == [12 * H, None, 7 * D]


def _params(**kw) -> PnlParams:
    base = PnlParams(QUOTES, 0.0, datetime.fromtimestamp(END, UTC), "r", windows=("1d", "all"))
    return base if not kw else PnlParams(**{**base.__dict__, **kw})


def test_as_of_is_the_latest_trade_capped_by_the_run_clock():
    assert resolve_as_of(_params(), END - 5).as_of == END - 5
    assert resolve_as_of(_params(), END + 99).as_of == END
    assert resolve_as_of(_params(), None).as_of == END
    assert resolve_as_of(_params(as_of=7), END).as_of == 7


def test_plan_moves_windows_and_adds_the_wallets_whose_trades_crossed_an_edge():
    params = _params(as_of=END)
    state = WindowState(END - H, frozenset({"1d", "all"}))
    seen = []

    def moved(bands: str) -> tuple[str, ...]:
        seen.append(bands)
        return ("M",)

    plan = plan_run(params, "incremental", state, lambda: ("S",), moved)
    assert plan is not None and plan.windows == "shift" and plan.params.wallets == ("M", "S")
    assert seen == [
        f"(block_unix_time > {END - H} AND block_unix_time <= {END}) OR "
        f"(block_unix_time > {END - H - D} AND block_unix_time <= {END - D})"
    ]
    assert seen[0] == window_bands(params, END - H)
    same = WindowState(END, frozenset({"1d", "all"}))
    assert plan_run(params, "incremental", same, lambda: (), moved) is None
    merge = plan_run(params, "incremental", same, lambda: ("S",), moved)
    assert merge is not None and (merge.windows, merge.params.wallets) == ("merge", ("S",))
    other = WindowState(END, frozenset({"7d", "all"}))
    full = plan_run(params, "incremental", other, lambda: ("S",), moved)
    assert full is not None and (full.mode, full.windows, full.params.wallets) == (
        "full", "overwrite", None
    )  # fmt: skip
    only = plan_run(_params(as_of=END, wallets=("W",)), "wallets", None, lambda: (), moved)
    assert only is not None and only.windows == "skip"


def test_the_worked_example_of_docs_pnl_section_8():
    trades = _docs_example()
    metrics = [
        {"token_address": "T", "snapshot_at": datetime(2024, 1, 1, tzinfo=UTC), "price": 4.0}
    ]
    got, _ = _windows(trades, ("2h", "5h", "all"), T0 + 6 * H, metrics)
    cols = ("realized_pnl", "unrealized_pnl", "total_pnl", "buy_count", "sell_count",
            "winning_sells", "total_bought", "total_sold", "matched_cost", "sold_qty",
            "matched_qty", "closed_positions", "volume_usd")  # fmt: skip
    table = {
        "2h": (-15, 10, -5, 1, 1, 0, 30, 75, 60, 50, 30, 1, 105),
        "5h": (205, 10, 215, 1, 2, 1, 30, 435, 200, 170, 150, 1, 465),
        "all": (205, 10, 215, 3, 2, 1, 230, 435, 200, 170, 150, 1, 665),
    }
    for window, numbers in table.items():
        row = got[("W", "T", window)]
        assert tuple(row[c] for c in cols) == pytest.approx(numbers), window
    assert got[("W", "T", "2h")]["roi"] == pytest.approx(-5 / 90)
    assert got[("W", "T", "5h")]["roi"] == pytest.approx(215 / 230)
    assert got[("W", "T", "2h")]["basis_coverage"] == pytest.approx(0.6)
    assert got[("W", "T", "all")]["basis_coverage"] == pytest.approx(150 / 170)
