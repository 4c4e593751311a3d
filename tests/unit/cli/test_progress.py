"""Stage progress in the CLI: log lines when stderr is not a terminal, nothing by default."""

from __future__ import annotations

import logging

import pytest

from smarttrader_cli.cli.progress import BarProgress, LogProgress, progress_for
from smarttrader_cli.context import AppContext
from smarttrader_cli.stages.contract import NoProgress, StageContext


def test_log_progress_reports_every_tenth_and_the_end(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("st.test")
    progress = LogProgress()
    with caplog.at_level(logging.INFO, logger="st.test"):
        progress.start(25, "wallets fetched", log)
        progress.advance(3)
        for _ in range(22):
            progress.advance()
        progress.done()
    lines = [r.getMessage() for r in caplog.records if r.name == "st.test"]
    assert lines == [
        f"wallets fetched: {n}/25" for n in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25)
    ]


def test_progress_follows_the_terminal_and_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert isinstance(progress_for(AppContext()), LogProgress)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert isinstance(progress_for(AppContext()), BarProgress)
    assert isinstance(progress_for(AppContext(quiet=True)), LogProgress)
    assert isinstance(progress_for(AppContext(log_format="json")), LogProgress)


def test_a_stage_context_reports_nothing_unless_told() -> None:
    field = StageContext.__dataclass_fields__["progress"]
    assert isinstance(field.default_factory(), NoProgress)  # type: ignore[misc]
