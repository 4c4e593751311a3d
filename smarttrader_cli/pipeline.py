"""The batch pipeline: its stages in order, the plan for --from/--to, and the runner."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import (
    LockHeldError,
    PipelineFailed,
    StageError,
    UsageError,
    first_line,
)

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.stages.contract import Stage, StageContext

PLANNED, RUNNING, SUCCEEDED, FAILED, NOT_RUN = (
    "planned",
    "running",
    "succeeded",
    "failed",
    "not run",
)

# The batch stages in order, as (name, "module:attribute") so listing them imports no stage;
# test_pipeline_plan checks each name against the stage it loads.
STAGES: tuple[tuple[str, str], ...] = (
    ("bronze.tokens", "smarttrader_cli.stages.bronze_tokens:run"),
    ("bronze.whales", "smarttrader_cli.stages.bronze_whales:run"),
    ("bronze.trades", "smarttrader_cli.stages.bronze_trades:run"),
    ("silver.pnl", "smarttrader_cli.stages.silver_pnl:run"),
    ("gold.rank", "smarttrader_cli.stages.gold:rank"),
    ("helius.sync", "smarttrader_cli.stages.helius_sync:run"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)
# Only in the pipeline when helius.webhook_url is set.
OPTIONAL = {"helius.sync": "helius.webhook_url"}


def load(target: str) -> Stage:
    """The stage at "module:attribute"."""
    module, _, attribute = target.partition(":")
    found: Stage = getattr(importlib.import_module(module), attribute)
    return found


@dataclass
class StageOutcome:
    """One stage's line in the pipeline summary."""

    stage: str
    status: str = PLANNED
    rows_in: int | None = None
    rows_out: int | None = None
    duration_seconds: float | None = None
    run_id: str | None = None
    error: str = ""

    def as_row(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duration_s": None
            if self.duration_seconds is None
            else round(self.duration_seconds, 2),
            "run_id": self.run_id,
            "error": self.error,
        }


def plan(config: Config, start: str | None = None, end: str | None = None) -> list[Stage]:
    """The stages to run, in order; an OPTIONAL stage only when its setting is set."""
    for option, name in (("--from", start), ("--to", end)):
        if name is not None and name not in STAGE_NAMES:
            raise UsageError(f"{option} {name!r} is not a stage; stages: {', '.join(STAGE_NAMES)}")
    names = list(STAGE_NAMES)
    for name, key in OPTIONAL.items():
        if not _setting(config, key):
            names = [n for n in names if n != name]
            if name in (start, end):
                raise UsageError(f"{name} is not in the pipeline: {key} is empty")
    first = names.index(start) if start else 0
    last = names.index(end) if end else len(names) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --to {end} in the pipeline")
    targets = dict(STAGES)
    return [load(targets[name]) for name in names[first : last + 1]]


def _setting(config: Config, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


Listener = Callable[[StageOutcome], None]


def run(
    ctx: StageContext, stages: list[Stage], listener: Listener | None = None
) -> list[StageOutcome]:
    """Run the stages in order, each its own stage run; stop at the first failure.

    Returns every planned stage's outcome (the ones after a failure as `not run`) and
    raises after the listener has seen the failure: LockHeldError (exit 75) when the
    stage was locked by another run, StageError (exit 1) naming the stage otherwise.
    """
    outcomes = [StageOutcome(s.name) for s in stages]
    notify = listener or (lambda outcome: None)
    for stage, outcome in zip(stages, outcomes, strict=True):
        outcome.status = RUNNING
        notify(outcome)
        started = time.monotonic()
        try:
            result = stage(ctx)
        except Exception as exc:  # an unexpected bug still stops the pipeline, named
            outcome.duration_seconds = time.monotonic() - started
            outcome.status, outcome.error = FAILED, first_line(exc)
            for later in outcomes:
                if later.status == PLANNED:
                    later.status = NOT_RUN
                    notify(later)
            notify(outcome)
            kind = LockHeldError if isinstance(exc, LockHeldError) else StageError
            raise PipelineFailed(kind, stage.name, outcome.error, outcomes) from exc
        outcome.duration_seconds = time.monotonic() - started
        outcome.status = SUCCEEDED
        outcome.rows_in, outcome.rows_out = result.rows_in, result.rows_out
        outcome.run_id = result.run_id or None
        notify(outcome)
    return outcomes
