"""Run discipline: run id, stage lock, ledger rows, commit metadata."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import first_line
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.ops.journal import clear_journal, journal_path, read_journal, write_journal
from smarttrader_cli.ops.ledger import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    Ledger,
    RunRecord,
    ended_unrecorded,
)
from smarttrader_cli.ops.locks import stage_lock

if TYPE_CHECKING:
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.runs")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class StageRun:
    """One run of one stage: the arguments it records, what it counts, what its commits carry."""

    run_id: str
    stage: str
    config_hash: str
    args: dict[str, Any] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    api_requests: int | None = None
    api_retries: int | None = None
    api_rate_limited: int | None = None

    def count_api(self, requests: int, retries: int, rate_limited: int) -> None:
        """Add one API client's counts to what the ledger records for this run."""
        self.api_requests = (self.api_requests or 0) + requests
        self.api_retries = (self.api_retries or 0) + retries
        self.api_rate_limited = (self.api_rate_limited or 0) + rate_limited

    @property
    def meta(self) -> CommitMeta:
        return CommitMeta(self.run_id, self.stage, self.config_hash)


@contextmanager
def stage_run(
    ctx: StageContext, stage: str, args: dict[str, Any] | None = None
) -> Iterator[StageRun]:
    """Lock the stage, journal the run, and record how it ended in `ops.runs` (one append).

    A journal the lock's previous holder left behind is recorded first: that run ended
    without appending its row (see ops/journal.py).
    """
    run = StageRun(new_run_id(), stage, ctx.config_hash, dict(args or {}))
    lake = ctx.lake
    lake.check_writable()
    ledger = Ledger(lake)
    state_dir = ctx.config.runtime.state_dir
    with stage_lock(state_dir, stage, run.run_id):
        journal = journal_path(state_dir, stage)
        _record_left_behind(ledger, journal, run.run_id)
        record = RunRecord(
            run.run_id, stage, RUNNING, datetime.now(UTC), ctx.config_hash, dict(run.args)
        )
        write_journal(journal, record.to_row())
        log.info("stage %s started (run %s)", stage, run.run_id)
        try:
            yield run
        except BaseException as exc:
            record.status = FAILED
            record.error = first_line(exc)
            if isinstance(exc, KeyboardInterrupt):
                record.error = "interrupted"
            _close(ledger, journal, record, run)
            log.error("stage %s failed (run %s): %s", stage, run.run_id, record.error)
            raise
        record.status = SUCCEEDED
        _close(ledger, journal, record, run)
        log.info(
            "stage %s succeeded (run %s): %d rows in, %d rows out",
            stage,
            run.run_id,
            run.rows_in,
            run.rows_out,
        )


def _record_left_behind(ledger: Ledger, journal: Path, run_id: str) -> None:
    """Append the row of the run whose journal is still here, then forget it.

    Holding the stage lock, this process is the only one that can: the journal's writer
    is gone (its flock went with it), and no other run of the stage can start meanwhile.
    """
    left = read_journal(journal)
    if left is None:
        return
    record = ended_unrecorded(left, noticed_by=run_id)
    log.warning(
        "recording run %s of %s: %s", record.run_id, record.stage, record.error or record.status
    )
    ledger.record(record)
    clear_journal(journal)


def _close(ledger: Ledger, journal: Path, record: RunRecord, run: StageRun) -> None:
    record.ended_at = datetime.now(UTC)
    record.rows_in, record.rows_out = run.rows_in, run.rows_out
    record.api_requests = run.api_requests
    record.api_retries = run.api_retries
    record.api_rate_limited = run.api_rate_limited
    try:
        # The outcome goes to the journal first: if the append below does not happen,
        # the next run of the stage appends it as it was, not as a crash.
        write_journal(journal, record.to_row())
        ledger.record(record)
    except Exception as exc:  # never mask the stage's own outcome with a ledger failure
        log.error("could not record run %s in ops.runs: %s", run.run_id, exc)
        return
    clear_journal(journal)
