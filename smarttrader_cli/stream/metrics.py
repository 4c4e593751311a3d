"""The webhook server's counters and latency histogram, rendered as Prometheus text."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters (optionally by label), gauges read at render time, one latency histogram."""

    def __init__(
        self,
        histogram: str = "st_webhook_request_duration_seconds",
        histogram_help: str = "POST /webhooks latency, until every event is durable",
    ) -> None:
        self.histogram, self.histogram_help = histogram, histogram_help
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {}
        self.labeled: dict[str, dict[str, int]] = {}
        self.gauges: dict[str, Callable[[], float]] = {}
        self.help: dict[str, str] = {}
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def counter(self, name: str, help_text: str) -> None:
        self.counters[name] = 0
        self.help[name] = help_text

    def labeled_counter(self, name: str, help_text: str) -> None:
        self.labeled[name] = {}
        self.help[name] = help_text

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = read
        self.help[name] = help_text

    def inc(self, name: str, amount: int = 1, label: str | None = None) -> None:
        """Add to a counter (thread-safe: the publisher thread counts too)."""
        with self._lock:
            if label is None:
                self.counters[name] += amount
            else:
                series = self.labeled[name]
                series[label] = series.get(label, 0) + amount

    def observe(self, seconds: float) -> None:
        """Record one latency (a request's, by default)."""
        with self._lock:
            self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._latency_sum += seconds
            self._latency_count += 1

    def value(self, name: str, label: str | None = None) -> int:
        if label is None:
            return self.counters[name]
        return self.labeled[name].get(label, 0)

    def render(self) -> str:
        """The exposition text (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for name, value in self.counters.items():
                lines += _head(name, self.help[name], "counter")
                lines.append(f"{name} {value}")
            for name, series in self.labeled.items():
                lines += _head(name, self.help[name], "counter")
                for label, value in sorted(series.items()):
                    lines.append(f'{name}{{reason="{label}"}} {value}')
            name = self.histogram
            lines += _head(name, self.histogram_help, "histogram")
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self._buckets, strict=False):
                cumulative += count
                lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {self._latency_count}')
            lines.append(f"{name}_sum {self._latency_sum:.6f}")
            lines.append(f"{name}_count {self._latency_count}")
        for name, read in self.gauges.items():
            lines += _head(name, self.help[name], "gauge")
            lines.append(f"{name} {read():g}")
        return "\n".join(lines) + "\n"


def _head(name: str, help_text: str, kind: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
