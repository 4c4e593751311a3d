"""`st follow` as a library: the stream drained continuously into bronze, each commit's
events through the alert rules and out to the channels within a second, silver and the
flows kept current beside it.

Threads: the drain (the caller's thread; `Drainer` in follow mode, its commits in a writer
thread), the alerter (alerting.py), the refresher (refresh.py) and the HTTP server
(http.py). It holds the locks of what it replaces for its whole life: `stream.drain`
(a cron drain beside it exits 75), `alerts.run` and the delivery lock (`st alerts deliver`
exits 75, `st alerts replay` queues for it). Setting `stop` (SIGTERM, SIGINT) ends it
cleanly: the batch being read is committed, its alerts evaluated and delivered, the
outbox's cursor recorded, silver merged once more.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from smarttrader_cli.follow.alerting import Alerter
    from smarttrader_cli.follow.knowledge import Knowledge
    from smarttrader_cli.follow.state import FollowState
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext
    from smarttrader_cli.stream.backend import Consumer
    from smarttrader_cli.stream.drain import DrainResult

log = logging.getLogger("st.follow")

# The stages whose locks `st follow` holds while it runs (besides its own).
HELD_LOCKS = ("stream.drain", "alerts.run")
LAG_EVERY_SECONDS = 1.0


@dataclass
class FollowLimits:
    """When follow stops besides `stop`: after `max_seconds`, or once `idle_seconds` passed
    with nothing new and every due alert delivered (the demo and the tests)."""

    max_seconds: float | None = None
    idle_seconds: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class FollowResult:
    """What one follow run did."""

    messages: int = 0
    events: int = 0
    commits: int = 0
    recovered_events: int = 0
    alerts_raised: int = 0
    alerts_queued: int = 0
    alerts_sent: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)


class Follower:
    """One `st follow` run over a stage context (the caller holds the `follow` stage lock)."""

    def __init__(self, ctx: StageContext, current: StageRun, state: FollowState) -> None:
        self.ctx = ctx
        self.current = current
        self.state = state
        self._knowledge: Knowledge | None = None
        self._alerter: Alerter | None = None
        self._lag_at = 0.0

    def knowledge(self) -> Knowledge:
        assert self._knowledge is not None
        return self._knowledge

    def _reloaded(self, knowledge: Knowledge) -> None:
        self._knowledge = knowledge  # one reference swap: the alerter sees old or new whole

    def run(self, limits: FollowLimits) -> FollowResult:
        """Follow until `limits.stop` is set or a limit is hit; returns what it did."""
        from smarttrader_cli.alerts.delivery import Deliverer, delivery_lock
        from smarttrader_cli.follow.alerting import Alerter
        from smarttrader_cli.follow.http import HealthServer
        from smarttrader_cli.follow.knowledge import Knowledge
        from smarttrader_cli.follow.refresh import Refresher
        from smarttrader_cli.lake.layout import repartition_from_writer
        from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
        from smarttrader_cli.ops.locks import stage_lock
        from smarttrader_cli.stream.backend import open_consumer
        from smarttrader_cli.stream.drain import Drainer, DrainLimits

        ctx, config, follow = self.ctx, self.ctx.config, self.ctx.config.follow
        started = time.monotonic()
        result = FollowResult()
        with ExitStack() as held:
            for name in HELD_LOCKS:
                held.enter_context(stage_lock(config.runtime.state_dir, name, self.current.run_id))
            held.enter_context(delivery_lock(config.runtime.state_dir, self.current.run_id))
            # as `st stream drain` does: a bronze from before its day partitions, rewritten once
            repartition_from_writer(
                ctx.lake, WEBHOOK_EVENTS, self.current.meta, config.runtime.state_dir
            )
            self._gauges()
            if follow.port:  # from here on: /health says what start-up is doing (503)
                server = HealthServer(self.state, follow.host, follow.port, follow.stall_seconds)
                held.callback(server.close)
                server.start()
            deliverer = None
            if config.alerts.channels:
                deliverer = held.enter_context(Deliverer(ctx.lake, config.alerts, ctx.secrets))
            self._knowledge = Knowledge.load(ctx.lake, config)
            refresher = Refresher(ctx, self.current.meta, self.state, self._reloaded)
            alerter = self._alerter = Alerter(
                ctx.lake, config, self.current.meta, deliverer, self.knowledge, self.state,
                parsed=refresher.add_legs,
            )  # fmt: skip
            self.state.wait_for("stream", "catching up with the stream")
            self.state.wait_for("silver", "the start-up run of silver.webhook_swaps")
            self.state.wait_for("setup", "evaluating the bronze events after the alerts' cursor")
            refresher.sync_silver()
            result.recovered_events = alerter.recover()
            alerter.start()
            refresher.start()
            stream = dataclasses.replace(
                config.stream, max_latency_seconds=follow.batch_latency_seconds
            )
            consumer = open_consumer(config)
            drainer = Drainer(
                ctx.lake,
                consumer,
                stream,
                self.current.meta,
                self._progress_of(consumer),
                state_dir=Path(config.runtime.state_dir),
                committed=self._committed_to(alerter),
                caught_up=lambda: self.state.done("stream"),
            )
            self.state.done("setup")
            watcher = self._watch(limits, started)
            try:
                drained = drainer.run(DrainLimits(follow=True, stop=limits.stop))
            finally:
                limits.stop.set()
                self.state.stopping = True
                watcher.join()
                try:
                    alerter.close()
                finally:
                    refresher.close()
            result.messages, result.events = drained.messages, drained.events_written
            result.commits = drained.commits
        c = self.state.count
        result.alerts_raised = c("st_follow_alerts_raised_total")
        result.alerts_queued = c("st_follow_alerts_queued_total")
        result.alerts_sent = c("st_follow_alerts_sent_total")
        result.counters = {k: c(k) for k in self.state.metrics.counters}
        result.seconds = time.monotonic() - started
        return result

    def _committed_to(self, alerter: Alerter) -> Callable[[pa.Table, int], None]:
        """What the drain's writer thread calls after each commit: count it, hand it over."""

        def committed(rows: pa.Table, version: int) -> None:
            self.state.committed(rows.num_rows)
            alerter.submit(rows, version)

        return committed

    def _progress_of(self, consumer: Consumer) -> Callable[[DrainResult], None]:
        def progress(r: DrainResult) -> None:
            before = self.state.count("st_follow_messages_total")
            self.state.inc("st_follow_messages_total", r.messages - before)
            self.current.rows_in, self.current.rows_out = r.messages, r.events_written
            now = time.monotonic()
            if now - self._lag_at >= LAG_EVERY_SECONDS:
                self._lag_at = now
                self.state.lag = consumer.lag()

        return progress

    def _gauges(self) -> None:
        m = self.state.metrics
        m.gauge(
            "st_follow_stream_lag",
            "unread messages in the stream",
            lambda: sum(self.state.lag.values()),
        )
        m.gauge("st_follow_alert_backlog_batches", "committed batches not yet evaluated",
                lambda: self.state.alert_backlog)  # fmt: skip
        m.gauge("st_follow_recent_smart_buys", "ranked wallets' buys kept for confluence",
                lambda: len(self._alerter.recent) if self._alerter else 0)  # fmt: skip
        m.gauge("st_follow_ranked_wallets", "ranked wallets the rules know",
                lambda: len(self._knowledge.ranked) if self._knowledge else 0)  # fmt: skip

    def _watch(self, limits: FollowLimits, started: float) -> threading.Thread:
        """A thread setting `stop` at `max_seconds`, or when idle for `idle_seconds`."""

        def watch() -> None:
            quiet_since = time.monotonic()
            seen = -1
            while not limits.stop.wait(0.2):
                now = time.monotonic()
                if limits.max_seconds is not None and now - started >= limits.max_seconds:
                    break
                if limits.idle_seconds is None:
                    continue
                messages = self.state.count("st_follow_messages_total")
                busy = self.state.alert_backlog or sum(self.state.lag.values())
                if messages != seen or busy:
                    seen, quiet_since = messages, now
                elif now - quiet_since >= limits.idle_seconds:
                    log.info("nothing new for %.0f s: stopping", limits.idle_seconds)
                    break
            limits.stop.set()

        thread = threading.Thread(target=watch, name="st-follow-watch", daemon=True)
        thread.start()
        return thread
