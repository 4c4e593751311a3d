"""lake/readers.py: the shared answers to "is it written", latest prices and the ranking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake import CommitMeta, Lake
from smarttrader_cli.lake.readers import latest_prices, ranked_wallets, require, smart_wallets
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_METRICS

META = CommitMeta("run-1", "test.stage", "cfg123")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_require_names_the_table_and_what_to_run(lake: Lake) -> None:
    with pytest.raises(StageError) as err:
        require(lake, SMART_WALLETS, "run `st gold rank` first")
    assert str(err.value) == (
        "table gold.smart_wallets has not been written yet; run `st gold rank` first"
    )
    lake.overwrite(SMART_WALLETS, pa.table({"wallet_address": ["w"]}), META)
    require(lake, SMART_WALLETS, "unused")


def test_latest_prices_skip_zero_nan_infinite_and_null(lake: Lake) -> None:
    assert latest_prices(lake) == {}
    rows = [  # token, hours after T0, price
        ("good", 0, 1.0),
        ("good", 1, 2.0),
        ("zero", 0, 3.0),
        ("zero", 1, 0.0),
        ("nan", 0, 4.0),
        ("nan", 1, float("nan")),
        ("inf", 0, 5.0),
        ("inf", 1, float("inf")),
        ("null", 0, 6.0),
        ("null", 1, None),
        ("negative", 0, -1.0),
        ("never", 0, 0.0),
    ]
    table = pa.table(
        {
            "token_address": [r[0] for r in rows],
            "snapshot_at": [T0 + timedelta(hours=r[1]) for r in rows],
            "price": pa.array([r[2] for r in rows], pa.float64()),
        }
    )
    lake.overwrite(TOKEN_METRICS, table, META)
    assert latest_prices(lake) == {"good": 2.0, "zero": 3.0, "nan": 4.0, "inf": 5.0, "null": 6.0}


def test_ranked_wallets_best_first_unranked_last(lake: Lake) -> None:
    with pytest.raises(StageError, match="run `st gold rank` first"):
        ranked_wallets(lake)
    assert smart_wallets(lake) == set()  # silver webhooks runs before any ranking
    table = pa.table(
        {"wallet_address": ["c", "b", "z", "a"], "rank": pa.array([2, 1, None, 2], pa.int64())}
    )
    lake.overwrite(SMART_WALLETS, table, META)
    assert [r["wallet_address"] for r in ranked_wallets(lake)] == ["b", "a", "c", "z"]
    assert [r["wallet_address"] for r in ranked_wallets(lake, limit=2)] == ["b", "a"]
    assert smart_wallets(lake) == {"a", "b", "c", "z"}
