"""Printing results: a rich table on a terminal, JSON or CSV for scripts.

A table piped into another program keeps its natural width (no cell wraps at 80 columns). In
tables, amounts of US dollars are rounded to the cent and other numbers keep four decimals;
JSON and CSV keep full precision.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

# Columns holding amounts of US dollars (prices are not amounts: a token may cost 1e-7 USD).
_USD = re.compile(
    r"(?!.*price).*(_usd|pnl)$|total_bought|total_sold|matched_cost|current_position_cost_basis"
    r"|current_position_value|liquidity|market_cap|fdv"
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def emit(
    rows: Sequence[dict[str, Any]],
    fmt: OutputFormat | str = OutputFormat.table,
    columns: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print rows in the chosen format to stdout."""
    fmt = OutputFormat(fmt)
    columns = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    if fmt is OutputFormat.json:
        data = [{c: _plain(r.get(c)) for c in columns} for r in rows]
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        return
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else _plain(r.get(c)) for c in columns])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    usd = [bool(_USD.fullmatch(c)) for c in columns]
    for r in rows:
        table.add_row(*[_cell(r.get(c), is_usd) for c, is_usd in zip(columns, usd, strict=True)])
    console = Console()
    if not console.is_terminal:  # a pipe or a file: the table's own width, whatever it is
        natural = Console(width=1_000_000).measure(table).maximum
        console = Console(width=natural)
    console.print(table)


def _cell(value: Any, usd: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if usd:  # to the cent; float noise such as 2.5e-09 reads 0.00, never -0.00
            return f"{value:,.2f}" if round(value, 2) else "0.00"
        return (
            f"{value:,.6g}"
            if abs(value) < 1e-3 and value
            else f"{value:,.4f}".rstrip("0").rstrip(".")
        )
    return str(_plain(value))


def echo_kv(pairs: Sequence[tuple[str, Any]]) -> None:
    """Print aligned key: value lines."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        sys.stdout.write(f"{key.ljust(width)}  {_plain(value)}\n")
