"""The batch pipeline: its stages in order, the plan for --from/--to, and the runner."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import LockHeldError, StageError, StError, UsageError

if TYPE_CHECKING:
    from smarttrader_cli.context import AppContext

log = logging.getLogger("st.pipeline")

PLANNED, RUNNING, SUCCEEDED, FAILED, NOT_RUN = (
    "planned",
    "running",
    "succeeded",
    "failed",
    "not run",
)


@dataclass(frozen=True)
class Stage:
    """One pipeline step: the stage name (also its lock and ledger name) and what it does."""

    name: str
    command: str
    writes: str
    run: Callable[[AppContext], Any]


def _bronze_tokens(app: AppContext) -> Any:
    from smarttrader_cli.stages.bronze import run_tokens

    return run_tokens(app)


def _bronze_whales(app: AppContext) -> Any:
    from smarttrader_cli.stages.bronze import run_whales

    return run_whales(app)


def _bronze_trades(app: AppContext) -> Any:
    from smarttrader_cli.stages.bronze import run_trades

    return run_trades(app)


def _silver_pnl(app: AppContext) -> Any:
    from smarttrader_cli.stages.silver_pnl import run_wallet_pnl

    return run_wallet_pnl(app)


def _gold_rank(app: AppContext) -> Any:
    from smarttrader_cli.stages.gold import rank

    return rank(app, echo_dbt=app.verbose > 0)


def _helius_sync(app: AppContext) -> Any:
    from smarttrader_cli.stages.helius_sync import sync

    return sync(app)


STAGES: tuple[Stage, ...] = (
    Stage("bronze.tokens", "st bronze tokens", "bronze.token_metrics", _bronze_tokens),
    Stage("bronze.whales", "st bronze whales", "bronze.whale_holders", _bronze_whales),
    Stage("bronze.trades", "st bronze trades", "bronze.wallet_trades", _bronze_trades),
    Stage("silver.pnl", "st silver pnl", "silver.wallet_pnl", _silver_pnl),
    Stage("gold.rank", "st gold rank", "gold.smart_wallets", _gold_rank),
    Stage("helius.sync", "st helius sync", "the Helius webhook's addresses", _helius_sync),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


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


def plan(app: AppContext, start: str | None = None, end: str | None = None) -> list[Stage]:
    """The stages to run, in order; helius.sync only when helius.webhook_url is set."""
    for option, name in (("--from", start), ("--to", end)):
        if name is not None and name not in STAGE_NAMES:
            raise UsageError(f"{option} {name!r} is not a stage; stages: {', '.join(STAGE_NAMES)}")
    stages = list(STAGES)
    if not app.config.helius.webhook_url:
        stages = [s for s in stages if s.name != "helius.sync"]
        if "helius.sync" in (start, end):
            raise UsageError("helius.sync is not in the pipeline: helius.webhook_url is empty")
    names = [s.name for s in stages]
    first = names.index(start) if start else 0
    last = names.index(end) if end else len(names) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --to {end} in the pipeline")
    return stages[first : last + 1]


Listener = Callable[[StageOutcome], None]


def run(
    app: AppContext, stages: list[Stage], listener: Listener | None = None
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
            result = stage.run(app)
        except StError as exc:
            _fail(outcome, started, exc)
            _skip_rest(outcomes, notify)
            notify(outcome)
            cls = LockHeldError if isinstance(exc, LockHeldError) else StageError
            raise PipelineFailed(cls, stage.name, outcome.error, outcomes) from exc
        except Exception as exc:  # an unexpected bug still stops the pipeline, named
            _fail(outcome, started, exc)
            _skip_rest(outcomes, notify)
            notify(outcome)
            raise PipelineFailed(StageError, stage.name, outcome.error, outcomes) from exc
        outcome.duration_seconds = time.monotonic() - started
        outcome.status = SUCCEEDED
        outcome.rows_in, outcome.rows_out, outcome.run_id = _counts(result)
        notify(outcome)
    return outcomes


class PipelineFailed(StError):
    """A stage failed: carries every outcome so the summary can still be printed."""

    def __init__(
        self, kind: type[StError], stage: str, error: str, outcomes: list[StageOutcome]
    ) -> None:
        super().__init__(f"pipeline stopped: stage {stage} failed: {error}")
        self.exit_code = kind.exit_code
        self.stage = stage
        self.outcomes = outcomes


def _fail(outcome: StageOutcome, started: float, exc: BaseException) -> None:
    outcome.duration_seconds = time.monotonic() - started
    outcome.status = FAILED
    text = str(exc).strip()
    outcome.error = text.splitlines()[0] if text else type(exc).__name__


def _skip_rest(outcomes: list[StageOutcome], notify: Listener) -> None:
    for later in outcomes:
        if later.status == PLANNED:
            later.status = NOT_RUN
            notify(later)


def _counts(result: Any) -> tuple[int | None, int | None, str | None]:
    """rows in/out and run id from a stage's summary (every one carries rows_in/rows_out)."""
    if result is None:
        return None, None, None
    return result.rows_in, result.rows_out, getattr(result, "run_id", None)
