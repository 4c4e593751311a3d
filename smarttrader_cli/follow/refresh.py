"""The work of `st follow` off the alert path, each on its own cadence, in one thread:
silver.webhook_swaps (`follow.silver_interval_seconds`), gold.token_flows (`st gold flows`,
`follow.flows_interval_seconds`), and the ranked wallets and prices the alert path keeps
in memory (`follow.refresh_seconds`).

Silver is parsed once: the alert path hands over the legs it parsed of each bronze commit
(`add_legs`), and a round merges them with the silver stage's own cursor (the bronze
version they reach), under its lock, and brings silver.webhook_unpriced up to date as the
stage does. That is exact only while silver's cursor is where
the handed-over legs begin, so the full stage (`st silver webhooks`: reading bronze after
its cursor, repricing legs left unpriced) runs first, again before each flows build, and
whenever a merge could not be made (a cron run held the lock, too much was buffered).

Flows run as their stage does (its lock, a row in ops.runs): a cron run holding it makes
this round skip it. A failure is logged and counted, and the next round tries again; it
never stops the drain or the alerts.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from smarttrader_cli.follow.knowledge import Knowledge
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.lake.store import CommitMeta
    from smarttrader_cli.stages.contract import StageContext

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS, WEBHOOK_SWAPS

log = logging.getLogger("st.follow")
MAX_BUFFERED_LEGS = 500_000  # past this, the buffer is dropped and the full stage reads bronze


class Refresher:
    """Runs silver merges, flow builds and knowledge reloads on their cadence until stopped."""

    def __init__(
        self,
        ctx: StageContext,
        meta: CommitMeta,
        state: FollowState,
        reloaded: Callable[[Knowledge], None],
    ) -> None:
        self.ctx = ctx
        self.meta = meta
        self.state = state
        self.reloaded = reloaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._buffer: list[tuple[pa.Table, int]] = []  # legs, and the bronze version they reach
        self._buffered = 0
        self._synced: int | None = None  # the bronze version silver holds every event of
        self._cursor: int | None = None  # the version silver's cursor names (its last commit)
        self._silver_app_id: str | None = None
        now = time.monotonic()
        self._next = {"silver": now, "flows": now, "knowledge": now}

    def add_legs(self, legs: pa.Table, version: int) -> None:
        """The silver rows the alert path parsed of bronze through `version`."""
        with self._lock:
            self._buffer.append((legs, version))
            self._buffered += legs.num_rows
            if self._buffered > MAX_BUFFERED_LEGS:
                self._buffer, self._buffered, self._synced = [], 0, None

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
                self._synced = None  # the full stage first: it reprices what came unpriced
                self._silver()
                self._flows()
            if now >= self._next["knowledge"]:
                self._next["knowledge"] = now + follow.refresh_seconds
                self._knowledge()
            self._stop.wait(max(0.1, min(self._next.values()) - time.monotonic()))

    def _silver(self) -> None:
        with self._lock:
            taken, self._buffer, self._buffered = self._buffer, [], 0
        if self._synced is None:
            self._attempt("silver.webhook_swaps", self._full_silver)
            if self._synced is None:  # not run: the next full run reads these from bronze
                return
        synced = self._synced
        taken = [(legs, v) for legs, v in taken if v > synced]  # not what it read already
        if taken and self._attempt("silver.webhook_swaps", lambda: self._merge(taken)):
            self.state.inc("st_follow_silver_merges_total")

    def _full_silver(self) -> None:
        from smarttrader_cli.stages import silver_webhooks

        done = silver_webhooks.run(self.ctx)
        self._synced = done.details.get("bronze_version")
        # A run that found nothing new commits nothing: the cursor stays where it was.
        self._cursor = self.ctx.lake.app_transaction_version(WEBHOOK_SWAPS, self._app_id())
        self.state.inc("st_follow_silver_merges_total")

    def _merge(self, taken: list[tuple[pa.Table, int]]) -> None:
        """Merge the handed-over legs, moving silver's cursor to the last version, under
        the silver stage's lock (held by a cron run: the full stage runs next round)."""
        import pyarrow as pa

        from smarttrader_cli.errors import LockHeldError
        from smarttrader_cli.ops.locks import stage_lock
        from smarttrader_cli.stages import webhook_unpriced
        from smarttrader_cli.stages.silver_webhooks import STAGE

        lake, run_id = self.ctx.lake, self.meta.run_id
        version = max(v for _, v in taken)
        app_id = self._app_id()
        try:
            with stage_lock(self.ctx.config.runtime.state_dir, STAGE, run_id):
                if lake.app_transaction_version(WEBHOOK_SWAPS, app_id) != self._cursor:
                    raise LockHeldError("silver.webhook_swaps moved on meanwhile")
                legs = pa.concat_tables([legs for legs, _ in taken])
                # silver.webhook_unpriced kept current as the stage keeps it (webhook_unpriced.py)
                since = datetime.now(UTC) - timedelta(hours=self.ctx.config.prices.lookback_hours)
                silver = lake.table(WEBHOOK_SWAPS) if lake.exists(WEBHOOK_SWAPS) else None
                before = webhook_unpriced.load(lake, silver, since)
                lake.merge(WEBHOOK_SWAPS, legs, self.meta, app_transactions=[(app_id, version)])
                self._synced = self._cursor = version
                after = webhook_unpriced.carried(before.rows, [legs], since)
                webhook_unpriced.save(lake, self.meta, after, since)
        except LockHeldError:
            self._synced = None
            raise

    def _app_id(self) -> str:
        """The silver stage's cursor id into bronze (its table id asked for once)."""
        from smarttrader_cli.lake.changes import cursor_app_id, table_id
        from smarttrader_cli.stages.silver_webhooks import STAGE

        if self._silver_app_id is None:
            bronze = table_id(self.ctx.lake.table(WEBHOOK_EVENTS))
            self._silver_app_id = cursor_app_id(STAGE, WEBHOOK_EVENTS, bronze)
        return self._silver_app_id

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
