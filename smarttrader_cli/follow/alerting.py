"""The alert path of `st follow`: each bronze commit's new events, parsed in memory, through
the rules, into the outbox, and delivered, in a thread of its own.

The drain hands over (rows, bronze version) right after each commit; batches that queued
up meanwhile are evaluated together. The outbox commit that queues a batch's alerts also
records the bronze version they were raised from, a cursor (an application transaction,
as `st alerts run` keeps into silver): after a crash, `recover` parses exactly the bronze
commits after it. Nothing due is missed; what is raised twice has the same id and is
ignored by the outbox. Batches raising nothing move the cursor at most every
`follow.cursor_interval_seconds` (one commit, not one per batch). A channel that is down
slows this thread only: the drain keeps committing, and a full queue (a bounded number of
batches) holds it back, so memory stays bounded.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.alerts.rules import WALLET_BUY
from smarttrader_cli.lake.tables import ALERTS, WEBHOOK_EVENTS

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from smarttrader_cli.alerts.delivery import Deliverer, DeliveryReport
    from smarttrader_cli.alerts.outbox import Alert
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.follow.knowledge import Knowledge
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.lake.store import CommitMeta, Lake

log = logging.getLogger("st.follow")

READER = "follow.alerts"  # whose cursor into bronze.webhook_events ops.alerts keeps
QUEUE_BATCHES = 64
EVENT_COLUMNS = ["signature", "payload", "event_type", "source", "slot", "event_timestamp"]
_STOP = object()  # queued by close()
FLUSH_SECONDS = 0.05  # idle this long with outcomes to commit: commit them alone


class Alerter:
    """Evaluates committed batches and delivers, in its own thread (`start`, `close`)."""

    def __init__(
        self,
        lake: Lake,
        config: Config,
        meta: CommitMeta,
        deliverer: Deliverer | None,
        knowledge: Callable[[], Knowledge],
        state: FollowState,
        parsed: Callable[[pa.Table, int, float | None], None] | None = None,
    ) -> None:
        """`parsed(legs, version, received)` gets the silver rows of each evaluation and
        when the oldest of its events was received (refresh.py)."""
        from smarttrader_cli.alerts.safety import gate_for
        from smarttrader_cli.follow.knowledge import RecentBuys

        self.lake = lake
        self.config = config
        self.meta = meta
        self.deliverer = deliverer
        self.knowledge = knowledge
        self.state = state
        self.parsed = parsed
        window = timedelta(minutes=config.alerts.rules.confluence.window_minutes)
        self.recent = RecentBuys(window)
        # one gate for the process: token facts stay in memory, failed lookups wait
        self.gate = gate_for(lake, config)
        self.channels = list(dict.fromkeys(config.alerts.channels))
        self._queue: queue.Queue[object] = queue.Queue(QUEUE_BATCHES)
        self._thread: threading.Thread | None = None
        self._app_id = ""
        self._evaluated: int | None = None  # the bronze version evaluated through
        self._recorded: int | None = None  # the version the outbox's cursor holds
        self._recorded_at = time.monotonic()
        self._last_retry_check = 0.0
        self.known: set[str] = set()  # the outbox's alert ids
        self.alerted_buys: set[tuple[str, str]] = set()  # (wallet, token) of its wallet_buys
        self._outcomes: list[dict[str, Any]] = []  # sent, their outcomes not committed yet
        self.failure: BaseException | None = None

    # --- start and stop -------------------------------------------------------

    def recover(self) -> int:
        """Before the drain starts: evaluate the bronze events after the outbox's cursor
        (the last `alerts.rules.max_age_minutes` when there is none), and record the
        cursor at bronze's current version. Returns the events evaluated."""
        import pyarrow.dataset as ds

        from smarttrader_cli.alerts.evaluate import alerted_buys, legs_since
        from smarttrader_cli.alerts.outbox import listing
        from smarttrader_cli.lake.changes import since_cursor

        rules = self.config.alerts.rules
        if self.lake.exists(ALERTS):
            rows = listing(self.lake)
            self.known = {r["alert_id"] for r in rows}
            self.alerted_buys = alerted_buys(rows)
        self.lake.ensure_table(WEBHOOK_EVENTS)
        bronze = self.lake.table(WEBHOOK_EVENTS)
        new = since_cursor(self.lake, WEBHOOK_EVENTS, bronze, READER, ALERTS)
        self._app_id, version = new.cursor
        now = datetime.now(UTC)
        window = timedelta(minutes=rules.confluence.window_minutes)
        self.recent.add(
            legs_since(self.lake, now - window - timedelta(minutes=rules.max_age_minutes))
            .to_pylist(),
            self.knowledge().ranked,
        )  # fmt: skip
        if new.dataset is None:
            since = int((now - timedelta(minutes=rules.max_age_minutes)).timestamp())
            log.info(
                "alerts: evaluating bronze events of the last %d minutes (%s)",
                rules.max_age_minutes, new.why,
            )  # fmt: skip
            events = bronze.to_pyarrow_dataset().to_table(
                columns=[*EVENT_COLUMNS, "received_at"],
                filter=ds.field("event_timestamp") >= since,
            )
        else:
            events = new.dataset.to_table(columns=[*EVENT_COLUMNS, "received_at"])
            if events.num_rows:
                log.info("alerts: evaluating %d bronze events after the cursor", events.num_rows)
        self._evaluate(events, version, record=True)
        return events.num_rows

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="st-follow-alerts", daemon=True)
        self._thread.start()

    def submit(self, rows: pa.Table, version: int) -> None:
        """A bronze commit's new rows (from the drain's writer thread); blocks while full."""
        while True:
            if self.failure is not None:
                raise RuntimeError(f"the alert path failed: {self.failure}") from self.failure
            try:
                self._queue.put((rows, version), timeout=1.0)
                break
            except queue.Full:
                continue
        self.state.alert_backlog = self._queue.qsize()

    def close(self) -> None:
        """Evaluate what is queued, record the cursor, deliver, and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None
        if self.failure is not None:
            raise self.failure

    # --- the thread -----------------------------------------------------------

    def _run(self) -> None:
        follow = self.config.follow
        try:
            while True:
                items = self._take(
                    FLUSH_SECONDS if self._outcomes else follow.retry_check_seconds / 2
                )
                if not items and self._outcomes:
                    self._flush()
                    continue
                stopping = _STOP in items
                batches = [i for i in items if i is not _STOP]
                self.state.alert_backlog = self._queue.qsize()
                if batches:
                    self._evaluate_batches(batches)  # type: ignore[arg-type]
                elif not self._outcomes and self._retry_due():
                    assert self.deliverer is not None
                    self._delivered(self.deliverer.deliver_due(self.meta), [], {})
                since = time.monotonic() - self._recorded_at
                if stopping or since >= follow.cursor_interval_seconds:
                    self._record_cursor()
                if stopping:
                    self._flush()
                    return
        except BaseException as exc:  # the drain's next submit and close raise it
            log.error("alert path failed: %s", exc)
            self.failure = exc

    def _take(self, wait: float) -> list[object]:
        """What is queued (waiting up to `wait` for the first): batches evaluated together."""
        items: list[object] = []
        try:
            items.append(self._queue.get(timeout=wait))
        except queue.Empty:
            return items
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _retry_due(self) -> bool:
        """Time to look for retries and replays that fell due (idle between batches)."""
        if self.deliverer is None or not self.channels:
            return False
        if time.monotonic() - self._last_retry_check < self.config.follow.retry_check_seconds:
            return False
        self._last_retry_check = time.monotonic()
        return True

    def _evaluate_batches(self, batches: list[tuple[pa.Table, int]]) -> None:
        import pyarrow as pa

        rows = pa.concat_tables([r.select([*EVENT_COLUMNS, "received_at"]) for r, _ in batches])
        self._evaluate(rows, max(v for _, v in batches))

    def _evaluate(self, events: pa.Table, version: int, record: bool = False) -> None:
        """Parse, raise, queue (with the cursor when there are alerts, or `record`), deliver."""
        from smarttrader_cli.alerts import outbox
        from smarttrader_cli.alerts.evaluate import LEG_COLUMNS, raise_alerts
        from smarttrader_cli.stages.silver_webhooks import legs_table

        know = self.knowledge()
        now = datetime.now(UTC)
        timer = time.monotonic()
        legs = legs_table(events, know.valuation, set(know.ranked), now, self.meta.run_id)
        received = _received_at(events)
        if self.parsed is not None and not record:
            # (recovery's events: silver's full run reads them)
            self.parsed(legs, version, min(received.values(), default=None))
        leg_rows = legs.select(LEG_COLUMNS).to_pylist()
        self.state.inc("st_follow_legs_total", len(leg_rows))
        self.recent.add(leg_rows, know.ranked)
        found = raise_alerts(
            self.lake, self.config, leg_rows, now, know.ranked, context=self.recent.since,
            gate=self.gate, meta=self.meta, alerted=self.alerted_buys,
        )  # fmt: skip
        self.state.inc("st_follow_smart_buys_total", len(found.buys))
        for buy in found.buys[-self.config.follow.view_rows :]:
            self.state.saw_buy(
                f"{buy.wallet_rank.tier} {buy.wallet[:8]}… bought ${buy.value_usd:,.0f} "
                f"of {buy.token_address[:8]}…"
            )
        self._evaluated = version
        evaluated_at = time.monotonic()
        self.state.inc("st_follow_alerts_raised_total", len(found.alerts))
        # Only this process adds alerts while it holds the alerts.run lock: the ids it knows
        # are the outbox's, so what is new is known without reading the outbox.
        new = [a for a in dict((a.id, a) for a in found.alerts).values() if a.id not in self.known]
        if not new and not record:
            self._flush()  # what was sent before does not wait for the next alert
            return
        claim = self.config.alerts.batch_size if self.deliverer is not None else 0
        rows = outbox.new_rows(new, self.channels, self.meta, now, claimed=claim)
        outcomes, self._outcomes = self._outcomes, []
        claimed = outbox.insert_claimed(
            self.lake, rows, self.meta, (self._app_id, version), outcomes
        )
        self.known.update(a.id for a in new)
        self.alerted_buys |= {
            (a.data["wallet"], a.token_address)
            for a in new
            if a.rule == WALLET_BUY and not (a.safety is not None and a.safety.blocks)
        }
        self._recorded, self._recorded_at = version, time.monotonic()
        self.state.inc("st_follow_alerts_queued_total", len(rows))
        queued_at = time.monotonic()
        if claimed and self.deliverer is not None:
            # Their outcomes ride on the next commit (the next batch's, or a flush when
            # idle), not one of their own: the alert after them waits one commit less.
            report = self.deliverer.send_claimed(claimed, self.meta, commit=False)
            self._outcomes = claimed
            self._delivered(report, new, received)
        waited = time.time() - min(received.values(), default=time.time())
        log.debug(
            "evaluated %d events (the oldest received %.3f s ago): %d alerts in %.3f s, "
            "queued in %.3f s, sent in %.3f s",
            events.num_rows, waited, len(new), evaluated_at - timer, queued_at - evaluated_at,
            time.monotonic() - queued_at,
        )  # fmt: skip

    def _flush(self) -> None:
        """Commit the outcomes of what was sent last."""
        from smarttrader_cli.alerts import outbox

        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            outbox.save(self.lake, outcomes, self.meta)

    def _record_cursor(self) -> None:
        """Move the outbox's cursor to what was evaluated (alone: no alert came with it)."""
        from smarttrader_cli.alerts.outbox import enqueue

        if self._evaluated is None or self._evaluated == self._recorded:
            self._recorded_at = time.monotonic()
            return
        enqueue(self.lake, [], self.channels, self.meta, cursor=(self._app_id, self._evaluated))
        self._recorded, self._recorded_at = self._evaluated, time.monotonic()

    def _delivered(
        self, report: DeliveryReport, alerts: list[Alert], received: dict[str, float]
    ) -> None:
        state = self.state
        state.inc("st_follow_alerts_sent_total", report.sent)
        state.inc("st_follow_alerts_retried_total", report.retried)
        state.inc("st_follow_alerts_dead_total", report.dead)
        state.inc("st_follow_alerts_uncertain_total", report.uncertain)
        if not alerts:
            return
        done = time.time()
        earliest = min(received.values(), default=None)
        for alert in alerts:
            at = received.get(str(alert.data.get("signature")), earliest)
            latency = done - at if at is not None and report.sent else None
            state.saw_alert(alert.text, latency)
            log.info(
                "alert %s %s: %s%s", alert.rule, alert.id, alert.text,
                f" ({latency:.2f} s after the webhook)" if latency is not None else "",
            )  # fmt: skip


def _received_at(events: pa.Table) -> dict[str, Any]:
    """Signature → when the webhook server received it (unix seconds)."""
    if "received_at" not in events.column_names:
        return {}
    times = events.column("received_at").to_pylist()
    sigs = events.column("signature").to_pylist()
    return {s: t.timestamp() for s, t in zip(sigs, times, strict=True) if t is not None}
