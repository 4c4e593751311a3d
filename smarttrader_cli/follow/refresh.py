"""The work of `st follow` off the alert path, each on its own cadence, in one thread:
silver.webhook_swaps (`st silver webhooks`, `follow.silver_interval_seconds`), then
gold.token_flows (`st gold flows`, `follow.flows_interval_seconds`), and the ranked
wallets and prices the alert path keeps in memory (`follow.refresh_seconds`).

Silver and flows run as their stages do (their locks, a row each in ops.runs): a cron run
of either holding its lock makes this round skip it. A failure is logged and counted, and
the next round tries again; it never stops the drain or the alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from smarttrader_cli.follow.knowledge import Knowledge
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.follow")


class Refresher:
    """Runs silver merges, flow builds and knowledge reloads on their cadence until stopped."""

    def __init__(
        self, ctx: StageContext, state: FollowState, reloaded: Callable[[Knowledge], None]
    ) -> None:
        self.ctx = ctx
        self.state = state
        self.reloaded = reloaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        now = time.monotonic()
        self._next = {"silver": now, "flows": now, "knowledge": now}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="st-follow-refresh", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the work in hand; then one last silver merge of what came in."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._silver()

    def _run(self) -> None:
        follow = self.ctx.config.follow
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= self._next["silver"]:
                self._next["silver"] = now + follow.silver_interval_seconds
                self._silver()
            if follow.flows_interval_seconds and now >= self._next["flows"]:
                self._next["flows"] = now + follow.flows_interval_seconds
                self._flows()
            if now >= self._next["knowledge"]:
                self._next["knowledge"] = now + follow.refresh_seconds
                self._knowledge()
            self._stop.wait(max(0.1, min(self._next.values()) - time.monotonic()))

    def _silver(self) -> None:
        from smarttrader_cli.stages import silver_webhooks

        if self._attempt("silver.webhook_swaps", lambda: silver_webhooks.run(self.ctx)):
            self.state.inc("st_follow_silver_merges_total")

    def _flows(self) -> None:
        from smarttrader_cli.stages.gold import flows

        if self._attempt("gold.token_flows", lambda: flows(self.ctx)):
            self.state.inc("st_follow_flows_builds_total")

    def _knowledge(self) -> None:
        from smarttrader_cli.follow.knowledge import Knowledge

        def reload() -> None:
            self.reloaded(Knowledge.load(self.ctx.lake, self.ctx.config))

        self._attempt("the ranked wallets and prices", reload)

    def _attempt(self, what: str, work: Callable[[], object]) -> bool:
        from smarttrader_cli.errors import LockHeldError

        started = time.monotonic()
        try:
            work()
        except LockHeldError as exc:
            log.info("%s not refreshed this round: %s", what, exc)
            return False
        except Exception as exc:
            self.state.inc("st_follow_errors_total")
            log.error("refreshing %s failed (next round tries again): %s", what, exc)
            return False
        log.debug("%s refreshed in %.2f s", what, time.monotonic() - started)
        return True
