"""What both PnL engines share: the run's scope and the SQL they load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smarttrader_cli.engines.pnl_common import PnlParams, load_sql, run_scope

PARAMS = PnlParams(("USDC",), 1.0, datetime(2026, 1, 1, tzinfo=UTC), "run-1")


def test_an_incremental_run_narrows_to_the_stale_wallets() -> None:
    scope = run_scope(PARAMS, "incremental", lambda: ("W2", "W1"))
    assert scope is not None
    params, mode = scope
    assert mode == "incremental" and params.wallets == ("W2", "W1")
    assert (params.quote_assets, params.run_id) == (PARAMS.quote_assets, PARAMS.run_id)


def test_an_empty_silver_makes_a_full_run_and_no_change_makes_none() -> None:
    assert run_scope(PARAMS, "incremental", lambda: None) == (PARAMS, "full")
    assert run_scope(PARAMS, "incremental", lambda: ()) is None


def test_other_modes_never_ask_for_stale_wallets() -> None:
    def fail() -> tuple[str, ...]:
        raise AssertionError("not asked")

    assert run_scope(PARAMS, "full", fail) == (PARAMS, "full")


@pytest.mark.parametrize(
    ("dialect", "name", "subs"),
    [
        ("duckdb", "06_rows.sql", {"token_rows": "st_token_rows"}),
        ("spark", "07_rows.sql", {"token_rows": "r", "trades": "t"}),
    ],
)
def test_shared_sql_is_included_and_spelled_for_the_dialect(
    dialect: str, name: str, subs: dict[str, str]
) -> None:
    text = load_sql(dialect, name, **subs)
    assert "include:" not in text and "'ALL_TOKENS' AS token_address" in text
    other = {"duckdb": "timestamp_seconds(", "spark": "to_timestamp("}[dialect]
    assert other not in text
