"""dbt/models/sources.yml, generated from the table registry (lake/tables.py).

Each layer is a dbt source reading its Delta tables with delta_scan; each table lists
its columns with their DuckDB types, `not_null` on the key columns and the project's
`unique_combination` test on its natural key, so dbt and the lake cannot disagree.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import yaml

from smarttrader_cli.lake.tables import TABLES, TableSpec

HEADER = """\
# Generated from smarttrader_cli/lake/tables.py by `python -m smarttrader_cli.docs_gen`;
# do not edit by hand. `lake_root` is passed by st (the resolved lake.root); the path
# layout <root>/<layer>/<table> is the one of lake/tables.py.
"""


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type that delta_scan gives a column of this Arrow type."""
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp"
    names = {
        pa.string(): "varchar",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    return names[arrow_type]


def _flow(value: Any) -> str:
    """`value` as one line of YAML (flow style), quoted only where YAML needs it."""
    dumped: str = yaml.safe_dump(
        value, default_flow_style=True, sort_keys=False, width=float("inf")
    )
    return dumped.strip().removesuffix("...").strip()


def _column(f: pa.Field) -> str:
    column: dict[str, Any] = {"name": f.name, "data_type": duckdb_type(f.type)}
    if not f.nullable:
        column["data_tests"] = ["not_null"]
    return _flow(column)


def _table(spec: TableSpec) -> list[str]:
    description = spec.description[:1].upper() + spec.description[1:].rstrip(".") + "."
    return [
        f"      - name: {spec.short_name}",
        f"        description: {_flow(description)}",
        "        data_tests:",
        "          - unique_combination:",
        "              arguments:",
        f"                columns: {_flow(list(spec.keys))}",
        "        columns:",
        *(f"          - {_column(f)}" for f in spec.schema),
    ]


def sources_yaml() -> str:
    """The whole sources.yml: one source per layer, in the registry's order."""
    layers: dict[str, list[TableSpec]] = {}
    for spec in TABLES.values():
        layers.setdefault(spec.layer, []).append(spec)
    lines = [HEADER.rstrip("\n"), "version: 2", "", "sources:"]
    for layer, specs in layers.items():
        location = f"delta_scan('{{{{ var('lake_root') }}}}/{layer}/{{name}}')"
        lines += [
            f"  - name: {layer}",
            "    config:",
            f"      external_location: {_flow(location)}",
        ]
        lines.append("    tables:")
        for spec in specs:
            lines += _table(spec)
    return "\n".join(lines) + "\n"
