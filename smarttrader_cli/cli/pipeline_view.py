"""Showing a pipeline run: a live stage table on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from smarttrader_cli.pipeline import FAILED, NOT_RUN, PLANNED, RUNNING, SUCCEEDED, StageOutcome

if TYPE_CHECKING:
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.stages.contract import Stage

log = logging.getLogger("st.pipeline")

_MARKS = {PLANNED: "·", RUNNING: "…", SUCCEEDED: "✓", FAILED: "✗", NOT_RUN: "-"}
_STYLES = {SUCCEEDED: "green", FAILED: "bold red", RUNNING: "cyan", NOT_RUN: "dim", PLANNED: "dim"}


class PipelineView:
    """Listener for `pipeline.run`: rich Live on a terminal, plain log lines under cron."""

    def __init__(self, app: AppContext, stages: list[Stage]) -> None:
        self.stages = stages
        self.outcomes: dict[str, StageOutcome] = {s.name: StageOutcome(s.name) for s in stages}
        self.started: dict[str, float] = {}
        self.live: Any = None
        if sys.stderr.isatty() and not app.quiet and app.log_format == "text":
            from rich import get_console
            from rich.live import Live

            # the global console, so stage progress bars nest inside this display
            self.live = Live(self, console=get_console(), refresh_per_second=4, transient=True)

    def __enter__(self) -> PipelineView:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, outcome: StageOutcome) -> None:
        self.outcomes[outcome.stage] = outcome
        index = [s.name for s in self.stages].index(outcome.stage) + 1
        step = f"[{index}/{len(self.stages)}] {outcome.stage}"
        if outcome.status == RUNNING:
            self.started[outcome.stage] = time.monotonic()
            log.info("%s started", step)
        elif outcome.status == SUCCEEDED:
            log.info(
                "%s succeeded in %.1fs (rows in %s, out %s)",
                step,
                outcome.duration_seconds or 0,
                outcome.rows_in,
                outcome.rows_out,
            )
        elif outcome.status == FAILED:
            log.error(
                "%s failed after %.1fs: %s", step, outcome.duration_seconds or 0, outcome.error
            )
        if self.live is not None:
            self.live.refresh()

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title="st pipeline", show_edge=False)
        for column in ("", "stage", "status", "rows in", "rows out", "time"):
            table.add_column(column)
        for stage in self.stages:
            o = self.outcomes[stage.name]
            elapsed = o.duration_seconds
            if o.status == RUNNING and stage.name in self.started:
                elapsed = time.monotonic() - self.started[stage.name]
            table.add_row(
                _MARKS[o.status],
                stage.name,
                f"[{_STYLES[o.status]}]{o.status}[/]",
                "" if o.rows_in is None else f"{o.rows_in:,}",
                "" if o.rows_out is None else f"{o.rows_out:,}",
                "" if elapsed is None else f"{elapsed:.1f}s",
            )
        return table


SUMMARY_COLUMNS = ("stage", "status", "rows_in", "rows_out", "duration_s", "run_id", "error")


def plan_rows(stages: list[Stage]) -> list[dict[str, Any]]:
    """The --dry-run plan as rows."""
    return [
        {"step": i, "stage": s.name, "command": s.command, "writes": s.writes}
        for i, s in enumerate(stages, 1)
    ]
