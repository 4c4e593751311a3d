"""Stage progress for the CLI: a rich bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smarttrader_cli.context import AppContext
    from smarttrader_cli.stages.contract import Progress


def progress_for(app: AppContext) -> Progress:
    """A bar when stderr is a terminal showing text logs, log lines otherwise."""
    if sys.stderr.isatty() and not app.quiet and app.log_format == "text":
        return BarProgress()
    return LogProgress()


class BarProgress:
    """A transient rich progress bar on stderr."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, total: int, unit: str, log: logging.Logger) -> None:
        if not total:
            return
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.start()
        self.task = self.bar.add_task(unit, total=total)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=n)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class LogProgress:
    """A log line on the stage's logger at every tenth of the work, and at its end."""

    def __init__(self) -> None:
        self.total = self.count = 0
        self.step = 1
        self.unit = "items"
        self.log = logging.getLogger("st")

    def start(self, total: int, unit: str, log: logging.Logger) -> None:
        self.total, self.count, self.unit, self.log = total, 0, unit, log
        self.step = max(1, total // 10)

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            self.count += 1
            if self.count % self.step == 0 or self.count == self.total:
                self.log.info("%s: %d/%d", self.unit, self.count, self.total)

    def done(self) -> None:
        pass
