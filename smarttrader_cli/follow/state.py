"""What a running `st follow` has done, for /health, /metrics, the terminal view and its result.

Written by the drain's and the alerter's threads, read by the HTTP server and the view:
counters go through `Metrics` (locked), the latest buys and alerts through a lock here.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from smarttrader_cli.stream.metrics import Metrics

COUNTERS = {
    "st_follow_batches_total": "bronze commits (batches of stream messages)",
    "st_follow_messages_total": "stream messages committed to bronze",
    "st_follow_events_total": "new events committed to bronze.webhook_events",
    "st_follow_legs_total": "swap legs parsed by the alert path",
    "st_follow_smart_buys_total": "buys by ranked wallets seen by the rules",
    "st_follow_alerts_raised_total": "alerts the rules raised (repeats included)",
    "st_follow_alerts_queued_total": "outbox rows added (alert x channel)",
    "st_follow_alerts_sent_total": "outbox rows delivered (2xx)",
    "st_follow_alerts_retried_total": "deliveries that failed and were rescheduled",
    "st_follow_alerts_dead_total": "outbox rows dead-lettered",
    "st_follow_alerts_uncertain_total": "sends that may have arrived twice",
    "st_follow_silver_merges_total": "merges into silver.webhook_swaps",
    "st_follow_flows_builds_total": "rebuilds of gold.token_flows",
    "st_follow_flows_live_commits_total": "commits of the gold.token_flows windows new smart "
    "legs touched",
    "st_follow_errors_total": "background refreshes or alert rounds that failed (logged)",
}


@dataclass(frozen=True)
class Seen:
    """One line of the terminal view: a smart buy or an alert."""

    at: float  # wall-clock seconds
    text: str
    latency: float | None = None  # seconds from the webhook's receipt to delivery


class FollowState:
    """Counters, the latest smart buys and alerts, and when bronze was last committed."""

    def __init__(self, rows: int = 10) -> None:
        self.metrics = Metrics(
            "st_follow_alert_seconds",
            "seconds from the webhook receiving an event to its alert being delivered",
        )
        for name, help_text in COUNTERS.items():
            self.metrics.counter(name, help_text)
        self.started = time.monotonic()
        self.last_commit: float | None = None  # monotonic
        self.buys: deque[Seen] = deque(maxlen=rows)
        self.alerts: deque[Seen] = deque(maxlen=rows)
        self.lag: dict[int, int] = {}
        self.alert_backlog = 0  # committed batches the alerter has not evaluated yet
        # per live flows commit: seconds from the webhook receiving its oldest leg's event
        self.flows_delays: deque[float] = deque(maxlen=1000)
        self.stopping = False
        # What start-up still waits for (part → why): ready once empty.
        self._waits: dict[str, str] = {"setup": "loading the ranked wallets and prices"}
        self._lock = threading.Lock()

    def inc(self, name: str, amount: int = 1) -> None:
        self.metrics.inc(name, amount)

    def count(self, name: str) -> int:
        return self.metrics.value(name)

    def committed(self, events: int) -> None:
        """A bronze commit of `events` new events happened just now."""
        self.inc("st_follow_batches_total")
        self.inc("st_follow_events_total", events)
        self.last_commit = time.monotonic()

    def wait_for(self, part: str, why: str) -> None:
        """Not ready until `done(part)`; `why` is what /health says meanwhile."""
        with self._lock:
            self._waits[part] = why

    def done(self, part: str) -> None:
        with self._lock:
            self._waits.pop(part, None)

    def waiting(self) -> list[str]:
        """Why it is not ready yet (empty once it is)."""
        with self._lock:
            return list(self._waits.values())

    def flows_committed(self, delay: float | None) -> None:
        """A live commit of gold.token_flows, `delay` after its oldest leg's webhook."""
        self.inc("st_follow_flows_live_commits_total")
        if delay is not None:
            with self._lock:
                self.flows_delays.append(delay)

    def saw_buy(self, text: str) -> None:
        with self._lock:
            self.buys.appendleft(Seen(time.time(), text))

    def saw_alert(self, text: str, latency: float | None) -> None:
        with self._lock:
            self.alerts.appendleft(Seen(time.time(), text, latency))
        if latency is not None:
            self.metrics.observe(latency)

    def latest(self) -> tuple[list[Seen], list[Seen]]:
        """The latest buys and alerts, newest first."""
        with self._lock:
            return list(self.buys), list(self.alerts)

    def health(self, stall_seconds: float) -> tuple[bool, dict[str, Any]]:
        """Whether the process is ready and keeps up, and why: starting until the rest of
        start-up is done (`waiting`), stalled while the stream holds unread events and
        nothing was committed for `stall_seconds`."""
        now = time.monotonic()
        since = now - (self.last_commit if self.last_commit is not None else self.started)
        lag = sum(self.lag.values())
        waiting = self.waiting()
        stalled = not waiting and lag > 0 and since > stall_seconds
        status = "stalled" if stalled else ("starting" if waiting else "ok")
        body: dict[str, Any] = {
            "status": "stopping" if self.stopping else status,
            "ready": not waiting,
            "uptime_seconds": round(now - self.started, 1),
            "seconds_since_commit": round(since, 1),
            "stream_lag": lag,
            "alert_backlog_batches": self.alert_backlog,
            "events": self.count("st_follow_events_total"),
            "alerts_sent": self.count("st_follow_alerts_sent_total"),
        }
        with self._lock:
            delays = sorted(self.flows_delays)
        if delays:  # the last 1,000 live flows commits
            body["flows_delay_seconds"] = {
                "p50": round(delays[len(delays) // 2], 3),
                "max": round(delays[-1], 3),
                "commits": len(delays),
            }
        if waiting:
            body["reason"] = "; ".join(waiting)
        return not (stalled or waiting), body
