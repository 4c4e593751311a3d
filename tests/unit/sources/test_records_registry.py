"""The BirdEye records and the bronze tables they fill declare the same columns."""

from __future__ import annotations

import types
import typing
from dataclasses import fields

import pyarrow as pa
import pytest

from smarttrader_cli.lake.tables import (
    TOKEN_METRICS,
    TOKEN_PRICES,
    WALLET_SOURCES,
    WALLET_TRADES,
    WHALE_HOLDERS,
    TableSpec,
)
from smarttrader_cli.sources.records import (
    HolderRecord,
    PriceRecord,
    TokenRecord,
    TradeRecord,
    WalletSourceRecord,
)

# record type, its table, and the columns the stage adds to what the API gave
PAIRS = [
    (TokenRecord, TOKEN_METRICS, {"snapshot_at", "run_id"}),
    (TradeRecord, WALLET_TRADES, {"fetched_at", "run_id"}),
    (HolderRecord, WHALE_HOLDERS, {"snapshot_at", "holder_rank", "share_of_supply", "run_id"}),
    (PriceRecord, TOKEN_PRICES, {"source", "fetched_at", "run_id"}),
    (WalletSourceRecord, WALLET_SOURCES, {"snapshot_at", "rank", "sort_by", "run_id"}),
]
PYTHON_TYPE = {pa.string(): str, pa.int32(): int, pa.int64(): int, pa.float64(): float}


@pytest.mark.parametrize(("record", "spec", "added"), PAIRS, ids=lambda p: getattr(p, "name", ""))
def test_record_fields_are_the_table_columns_in_order(
    record: type, spec: TableSpec, added: set[str]
) -> None:
    assert [f.name for f in fields(record)] == [n for n in spec.schema.names if n not in added]


@pytest.mark.parametrize(("record", "spec", "added"), PAIRS, ids=lambda p: getattr(p, "name", ""))
def test_record_types_fit_the_column_types(record: type, spec: TableSpec, added: set[str]) -> None:
    hints = typing.get_type_hints(record)
    for name, hint in hints.items():
        column = spec.schema.field(name)
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        assert [a for a in args if a is not type(None)] == [PYTHON_TYPE[column.type]], name
        # a key column (not nullable) must not be optional in the record
        assert column.nullable or type(None) not in args, name
