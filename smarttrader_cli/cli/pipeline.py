"""`st pipeline`: run the batch stages in order with progress and a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, app_context, stage_context
from smarttrader_cli.cli.output import OutputFormat, emit
from smarttrader_cli.pipeline import OPTIONAL, STAGE_NAMES

if TYPE_CHECKING:
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.pipeline import StageOutcome
    from smarttrader_cli.stages.contract import Stage

app = typer.Typer(help="Run the batch pipeline end to end.", no_args_is_help=True)

STAGE_HELP = ", ".join(STAGE_NAMES) + "".join(
    f" ({name} only when {key} is set)" for name, key in OPTIONAL.items()
)


@app.command("run")
def run(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option("--from", help=f"First stage to run: {STAGE_HELP}.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last stage to run.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and touch nothing.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run bronze tokens → whales → trades → silver pnl → gold rank [→ helius sync].

    Each stage is its own run (lock + ledger row). Stops at the first failed stage with
    exit 1 naming it; the summary table (stage, rows in/out, duration, status) is
    printed either way.

    Example: st pipeline run --from silver.pnl --to gold.rank
    """
    from smarttrader_cli.cli.pipeline_view import plan_rows
    from smarttrader_cli.pipeline import plan

    app_ctx = app_context(ctx)
    stages = plan(app_ctx.config, start, end)
    if dry_run:
        emit(
            plan_rows(stages),
            fmt,
            ["step", "stage", "command", "writes"],
            title="pipeline plan (dry run: nothing runs)",
        )
        return
    run_and_summarise(app_ctx, stages, fmt)


def run_and_summarise(
    app_ctx: AppContext, stages: list[Stage], fmt: OutputFormat = OutputFormat.table
) -> list[StageOutcome]:
    """Run `stages` with the live view and print the summary; re-raises a failure after it."""
    from smarttrader_cli.cli.pipeline_view import SUMMARY_COLUMNS, PipelineView
    from smarttrader_cli.errors import PipelineFailed
    from smarttrader_cli.pipeline import run as run_stages

    failure: PipelineFailed | None = None
    with PipelineView(app_ctx, stages) as view:
        try:
            outcomes = run_stages(stage_context(app_ctx), stages, view)
        except PipelineFailed as exc:
            failure, outcomes = exc, exc.outcomes
    # run ids are for scripts (json/csv); the table stays readable in 80 columns
    columns = [c for c in SUMMARY_COLUMNS if fmt is not OutputFormat.table or c != "run_id"]
    emit([o.as_row() for o in outcomes], fmt, columns, title="pipeline summary")
    if failure is not None:
        raise failure
    return outcomes
