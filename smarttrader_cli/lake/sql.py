"""SQL literals and predicates, written one way for Delta (delta-rs, delta-spark) and DuckDB.

Delta predicates (merge, delete, overwrite) and the engines' SQL take values inline, so
every value goes through `literal`: strings are single-quoted with quotes doubled, which
all three dialects read the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

Value = str | int | float | datetime


def quote(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def literal(value: Value) -> str:
    """A value as SQL: strings and datetimes (ISO 8601) quoted, numbers as written."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a SQL literal here; write TRUE or FALSE")
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, datetime):
        return quote(value.isoformat())
    if isinstance(value, float):
        return repr(value)
    return str(int(value))


def in_list(column: str, values: Iterable[Value], *, negate: bool = False) -> str:
    """`column IN (...)` (or NOT IN); an empty list matches nothing (everything, negated)."""
    items = [literal(v) for v in values]
    if not items:
        return "TRUE" if negate else "FALSE"
    return f"{column} {'NOT IN' if negate else 'IN'} ({', '.join(items)})"


def between(
    column: str,
    after: Value | None = None,
    before: Value | None = None,
    *,
    inclusive: bool = False,
) -> str:
    """`after < column < before` (`<=` with `inclusive`); a missing bound is left out."""
    op = "<=" if inclusive else "<"
    parts = []
    if after is not None:
        parts.append(f"{column} {'>=' if inclusive else '>'} {literal(after)}")
    if before is not None:
        parts.append(f"{column} {op} {literal(before)}")
    return " AND ".join(parts) or "TRUE"
