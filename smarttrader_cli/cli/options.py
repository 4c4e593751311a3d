"""Option bundles shared by several commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smarttrader_cli.cli.output import OutputFormat
from smarttrader_cli.context import AppContext

if TYPE_CHECKING:
    from smarttrader_cli.stages.contract import StageContext

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


def refuse_if_running(ctx: typer.Context, stage: str) -> None:
    """Exit 75 before a stage command's heavy imports when the stage is running here."""
    from smarttrader_cli.ops.locks import refuse_if_held

    refuse_if_held(app_context(ctx).config.runtime.state_dir, stage)


def stage_context(app: AppContext | typer.Context) -> StageContext:
    """What stages run with, from the CLI's state: progress as the terminal allows, and
    dbt's own output with -v."""
    from smarttrader_cli.cli.progress import progress_for
    from smarttrader_cli.stages.contract import StageContext

    if not isinstance(app, AppContext):
        app = app_context(app)
    return StageContext.of(
        app.loaded, app.lake, progress=progress_for(app), echo_tools=app.verbose > 0
    )
