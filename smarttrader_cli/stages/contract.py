"""The stage contract: a typed context in, one result out, the run discipline declared once.

A stage is a function `body(ctx, run, **args) -> StageResult` decorated with
`@stage(name, writes=..., command=...)`. The decorator wraps it in `stage_run` (the
stage lock, the `ops.runs` ledger row, commit metadata), so callers get
`Stage.__call__(ctx, **args) -> StageResult` and the CLI and the pipeline only render it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from smarttrader_cli.config.loader import LoadedConfig, Secrets
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun


class Progress(Protocol):
    """How a stage reports progress through its units of work (a bar, log lines, nothing)."""

    def start(self, total: int, unit: str, log: logging.Logger) -> None:
        """`total` units to go, named by `unit` ("wallets fetched"); `log` is the stage's logger."""

    def advance(self, n: int = 1) -> None:
        """`n` more units done."""

    def done(self) -> None:
        """The work ended (finished or not)."""


class NoProgress:
    """Reports nothing: the default outside the CLI."""

    def start(self, total: int, unit: str, log: logging.Logger) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


@dataclass(frozen=True)
class StageContext:
    """What a stage runs with: the config, the lake, the secrets and a progress reporter.

    `echo_tools` lets tools a stage drives (dbt) print their own output.
    """

    config: Config
    lake: Lake
    secrets: Secrets
    config_hash: str
    progress: Progress = field(default_factory=NoProgress)
    echo_tools: bool = False

    @classmethod
    def of(cls, loaded: LoadedConfig, lake: Lake, **options: Any) -> StageContext:
        """The context of a loaded config and its lake; `options` set progress, echo_tools."""
        return cls(loaded.config, lake, loaded.secrets, loaded.hash, **options)


@dataclass
class StageResult:
    """What one stage run did: the ledger's counts plus stage-specific numbers in `details`.

    `records` are rows the stage produced for the caller to show (the ranking, the flows).
    """

    stage: str
    run_id: str
    rows_in: int
    rows_out: int
    details: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        """One row for printing: the counts, then the details."""
        return {
            "stage": self.stage,
            "run_id": self.run_id,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            **self.details,
        }


def run_result(
    run: StageRun, records: Iterable[dict[str, Any]] = (), **details: Any
) -> StageResult:
    """The result of `run`: its counts as the ledger records them, plus `details`."""
    return StageResult(run.stage, run.run_id, run.rows_in, run.rows_out, details, list(records))


@dataclass(frozen=True)
class Stage:
    """A named step: its name (also its lock and ledger name), command, output and function."""

    name: str
    command: str
    writes: str
    run: Callable[..., StageResult]

    def __call__(self, ctx: StageContext, **args: Any) -> StageResult:
        return self.run(ctx, **args)


Body = Callable[..., StageResult]
Prepare = Callable[..., dict[str, Any]]


def stage(
    name: str, *, writes: str, command: str, prepare: Prepare | None = None
) -> Callable[[Body], Stage]:
    """Make `body(ctx, run, **args)` the stage `name`, run under its lock and ledger row.

    `prepare(ctx, **args)` runs before the lock: it raises for arguments or config the
    stage cannot run with, and returns the arguments the ledger records (default: `args`),
    which the body finds again as `run.args`.
    """

    def wrap(body: Body) -> Stage:
        def run(ctx: StageContext, **args: Any) -> StageResult:
            from smarttrader_cli.ops.runs import stage_run

            recorded = prepare(ctx, **args) if prepare is not None else args
            with stage_run(ctx, name, recorded) as current:
                return body(ctx, current, **args)

        run.__doc__ = body.__doc__
        return Stage(name, command, writes, run)

    return wrap
