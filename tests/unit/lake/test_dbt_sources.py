"""dbt's sources and the gold models are held to the table registry."""

from __future__ import annotations

import pyarrow as pa
import pytest
import yaml

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.dbt_sources import sources_yaml
from smarttrader_cli.lake.tables import TABLES, TOKEN_FLOWS
from smarttrader_cli.stages.gold import with_run_columns


def test_sources_declare_every_table_its_columns_and_its_key() -> None:
    sources = yaml.safe_load(sources_yaml())["sources"]
    declared = {f"{s['name']}.{t['name']}": t for s in sources for t in s["tables"]}
    assert sorted(declared) == sorted(TABLES)
    for name, table in declared.items():
        spec = TABLES[name]
        assert [c["name"] for c in table["columns"]] == spec.schema.names
        [key_test] = table["data_tests"]
        assert key_test["unique_combination"]["arguments"]["columns"] == list(spec.keys)
        not_null = [c["name"] for c in table["columns"] if "not_null" in c.get("data_tests", [])]
        assert not_null == [f.name for f in spec.schema if not f.nullable]


def _model_rows(names: list[str]) -> pa.Table:
    return pa.table({n: pa.array([], TOKEN_FLOWS.schema.field(n).type) for n in names})


def test_gold_refuses_a_model_whose_columns_drifted_from_the_table() -> None:
    names = [n for n in TOKEN_FLOWS.schema.names if n not in ("computed_at", "run_id")]
    table = with_run_columns(_model_rows(names), TOKEN_FLOWS, "computed_at", "r1")
    assert set(table.column_names) == set(TOKEN_FLOWS.schema.names)
    drifted = _model_rows(names[1:]).append_column("extra", pa.array([], pa.int64()))
    with pytest.raises(StageError) as err:
        with_run_columns(drifted, TOKEN_FLOWS, "computed_at", "r1")
    assert str(err.value) == (
        "the dbt model for gold.token_flows does not match lake/tables.py: "
        "missing columns ['token_address'], columns not in the table ['extra']"
    )
