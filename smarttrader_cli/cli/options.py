"""Option bundles shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from smarttrader_cli.cli.output import OutputFormat
from smarttrader_cli.context import AppContext

FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output as a table, JSON array of objects, or CSV."),
]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to show.")]


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the root callback stored on the click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, AppContext):  # called outside `st` (tests building sub-apps)
        obj = AppContext()
        ctx.find_root().obj = obj
    return obj
