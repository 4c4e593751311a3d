"""The work of `st follow` off the alert path, each on its own cadence, in one thread:
silver.webhook_swaps (`follow.silver_interval_seconds`), gold.token_flows (`st gold flows`,
`follow.flows_interval_seconds`; between them the buckets new smart legs touched, every
`follow.flows_live_seconds`, flows.py), and the ranked wallets and prices the alert path
keeps in memory (`follow.refresh_seconds`).

Silver is parsed once: the alert path hands over the legs it parsed of each bronze commit
(`add_legs`), and a round merges them with the silver stage's own cursor (the bronze
version they reach), under its lock, and brings silver.webhook_unpriced up to date as the
stage does. That is exact only while silver's cursor is where
the handed-over legs begin, so the full stage (`st silver webhooks`: reading bronze after
its cursor, repricing legs left unpriced) runs first, again before each flows build, and
whenever a merge could not be made (a cron run held the lock, too much was buffered).

Smart legs handed over make the next live round merge silver (whatever its own cadence)
and then recompute the buckets they touched, so gold.token_flows shows them seconds after
their webhook. Full flow builds run as their stage does (its lock, a row in ops.runs): a cron run holding it makes
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

    from smarttrader_cli.follow.flows import LiveFlows
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
        # flow buckets (token, window start) of the legs handed over, not yet in silver
        # (under _lock), and those in silver but not yet in gold (this thread's alone),
        # each with when the webhook received the oldest of their legs (unix seconds)
        self._touched: set[tuple[str, int]] = set()
        self._touched_since: float | None = None
        self._due: set[tuple[str, int]] = set()
        self._due_since: float | None = None
        follow = ctx.config.follow
        self.live: LiveFlows | None = None
        if follow.flows_live_seconds:
            from smarttrader_cli.follow.flows import LiveFlows

            self.live = LiveFlows(ctx, meta)
        if follow.flows_interval_seconds or self.live is not None:
            state.wait_for("flows", "the start-up work of gold.token_flows")
        now = time.monotonic()
        self._next = {"silver": now, "flows": now, "knowledge": now, "live": now}

    def add_legs(self, legs: pa.Table, version: int, received: float | None = None) -> None:
        """The silver rows the alert path parsed of bronze through `version`; `received`:
        when the webhook received the oldest of their events."""
        touched = self.live.touched(legs) if self.live is not None else set()
        with self._lock:
            self._buffer.append((legs, version))
            self._buffered += legs.num_rows
            if self._buffered > MAX_BUFFERED_LEGS:
                self._buffer, self._buffered, self._synced = [], 0, None
            if touched:
                self._touched |= touched
                self._touched_since = _earliest(self._touched_since, received)

    def sync_silver(self) -> None:
        """The start-up run of the silver stage, before the alert path recovers: the buys it
        keeps for confluence are read from silver, which then holds every bronze event
        (those the alert path saw before a crash, not yet merged, included)."""
        self._silver()
        self.state.done("silver")

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
        if self._due:
            self._live_flows()
        if self.live is not None:
            self.live.close()

    def _run(self) -> None:
        follow = self.ctx.config.follow
        if self.live is not None:
            self._attempt("the gold.token_flows model", self.live.prepare)
        if not follow.flows_interval_seconds:
            self.state.done("flows")
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= self._next["silver"]:
                self._next["silver"] = now + follow.silver_interval_seconds
                self._silver()
                self.state.done("silver")  # its start-up run: tried, if not done (logged)
            if follow.flows_interval_seconds and now >= self._next["flows"]:
                self._next["flows"] = now + follow.flows_interval_seconds
                self._synced = None  # the full stage first: it reprices what came unpriced
                self._silver()
                self._flows()
                self.state.done("flows")
            if self.live is not None and now >= self._next["live"]:
                self._next["live"] = now + follow.flows_live_seconds
                with self._lock:
                    touched = bool(self._touched)
                if touched:
                    self._silver()
                if self._due:
                    self._live_flows()
            if now >= self._next["knowledge"]:
                self._next["knowledge"] = now + follow.refresh_seconds
                self._knowledge()
            self._stop.wait(max(0.1, min(self._next.values()) - time.monotonic()))

    def _silver(self) -> None:
        """Merge what was handed over; the flow buckets it touched are then due in gold."""
        with self._lock:
            taken, self._buffer, self._buffered = self._buffer, [], 0
            touched, since = self._touched, self._touched_since
            self._touched, self._touched_since = set(), None
        if self._merged(taken):
            self._due |= touched
            self._due_since = _earliest(self._due_since, since)
        elif touched:  # in silver after a later round (the full stage reads them from bronze)
            with self._lock:
                self._touched |= touched
                self._touched_since = _earliest(self._touched_since, since)

    def _merged(self, taken: list[tuple[pa.Table, int]]) -> bool:
        """Whether silver now holds every leg of `taken`."""
        if self._synced is None:
            self._attempt("silver.webhook_swaps", self._full_silver)
            if self._synced is None:  # not run: the next full run reads these from bronze
                return False
        synced = self._synced
        taken = [(legs, v) for legs, v in taken if v > synced]  # not what it read already
        if not taken:
            return True
        if self._attempt("silver.webhook_swaps", lambda: self._merge(taken)):
            self.state.inc("st_follow_silver_merges_total")
            return True
        return False

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

        due = self._due  # merged into silver before this build: it counts them
        if self._attempt("gold.token_flows", lambda: flows(self.ctx)):
            self.state.inc("st_follow_flows_builds_total")
            self._due -= due
            if not self._due:
                self._due_since = None

    def _live_flows(self) -> None:
        """Recompute and commit the buckets due (kept for the next round if it cannot)."""
        assert self.live is not None
        live = self.live
        due, since = self._due, self._due_since
        self._due, self._due_since = set(), None
        if self._attempt("gold.token_flows' touched windows", lambda: live.commit(due)):
            self.state.flows_committed(time.time() - since if since is not None else None)
        else:
            self._due |= due
            self._due_since = _earliest(self._due_since, since)

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


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
