"""Follow latency benchmark: webhook 200 → stream → `st follow` → a Telegram on loopback.

Each run starts `st webhook serve` and `st follow` as their own processes (the local
backend, or Kafka with a single-node broker from the project cache) and a simulated
Telegram (`smarttrader_cli.sim.telegram`) recording when each message arrives. A load
thread POSTs simulated Helius swaps (10 per request, distinct signatures) at a steady
`--rate` events/s for `--seconds`, noting when each POST got its 200. Every wallet that
buys is ranked; `wallet_buy` alerts fire on buys of at least `--min-usd` (at the default
about 3 % of the events: 17 alerts/s at 500 events/s); confluence and exits are off, so
every alert names the one event that raised it. Latency = the alert's arrival at the fake Telegram − its event's 200.

The load starts once follow's /health says it is ready. With `--flows-live` (default 3 s,
`follow.flows_live_seconds`) gold.token_flows is kept live too; follow's /health gives, per
live flows commit, the seconds from the webhook receiving its oldest leg's event to the
commit (their median and max are reported).

Reported per configuration (the median run of `--repeat`, by p99, all runs alongside):
p50/p99/max latency, alerts, events posted and found in bronze (lost = posted − found),
seconds until follow was ready, the flows delays, the load average before and after. The fake Telegram is unpaced (`rate_limit_rps` 0): a
real chat takes about one message a second, which queues any faster alert stream.
Writes bench/results/follow_latency.json.

Usage: .venv/bin/python -m bench.follow_latency [--backend local|kafka|both]
       [--rates 500 2000] [--seconds 20] [--repeat 3] [--min-usd 4600] [--flows-live 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.report import write_results
from smarttrader_cli.alerts import outbox
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.sim.telegram import FakeTelegram
from tests.follow_support import (
    AUTH,
    env_for,
    follow_config,
    ports,
    seed_lake,
    start_follow,
    start_receiver,
    stop,
    swaps,
)
from tests.harness import KafkaBroker, wait_until, write_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "follow_latency.json"
BOT_TOKEN = "4242:bench-bot-token"
PER_REQUEST = 10


def load(port: int, events: list[dict[str, Any]], rate: float, acked: dict[str, float]) -> None:
    """POST `events` at `rate` events/s (PER_REQUEST a request, 4 senders), paced on a
    schedule so a slow answer does not lower the rate; note each event's 200."""
    chunks = [events[i : i + PER_REQUEST] for i in range(0, len(events), PER_REQUEST)]
    interval = PER_REQUEST / rate
    began = time.monotonic()
    lock = threading.Lock()
    slots = iter(range(len(chunks)))

    def sender() -> None:
        with httpx.Client(headers={"Authorization": AUTH}, timeout=30) as client:
            while True:
                with lock:
                    i = next(slots, None)
                if i is None:
                    return
                delay = began + i * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                response = client.post(f"http://127.0.0.1:{port}/webhooks", json=chunks[i])
                now = time.time()
                if response.status_code == 200:
                    for e in chunks[i]:
                        acked[e["signature"]] = now

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def one_run(workdir: Path, backend: str, rate: float, seconds: float, min_usd: float,
            bootstrap: str | None, flows_live: float = 3.0) -> dict[str, Any]:  # fmt: skip
    """One measured run in a fresh folder; its numbers."""
    webhook_port, follow_port = ports()
    start = int(time.time())
    events = swaps(int(rate * seconds), start, seed=11)
    with FakeTelegram(BOT_TOKEN) as telegram:
        overrides = {
            **follow_config(workdir, webhook_port, follow_port),
            "stream.backend": backend,
            "stream.topic": f"bench-{workdir.name}",
            "alerts.channels": ["telegram"],
            "alerts.telegram.base_url": telegram.url,
            "alerts.telegram.chat_id": "-1001",
            "alerts.telegram.rate_limit_rps": 0,
            "alerts.batch_size": 50,
            "alerts.rules.wallet_buy.min_usd": min_usd,
            "alerts.rules.confluence.enabled": False,
            "alerts.rules.exit.enabled": False,
            "follow.silver_interval_seconds": 10.0,
            "follow.flows_live_seconds": flows_live,
        }
        if bootstrap:
            overrides["stream.bootstrap_servers"] = bootstrap
        config = write_config(workdir, overrides)
        lake = Lake(str(workdir / "lake"))
        seed_lake(lake, events, start, hours=int(seconds * rate / 3600) + 2)
        env = env_for(config, ST_TELEGRAM_BOT_TOKEN=BOT_TOKEN)
        receiver = start_receiver(env, webhook_port)
        follow_log = workdir / "follow.log"
        started = time.monotonic()
        follow = start_follow(env, follow_port, stderr=follow_log.open("wb"))
        acked: dict[str, float] = {}
        load_before = os.getloadavg()[0]

        def health() -> dict[str, Any]:
            return dict(httpx.get(f"http://127.0.0.1:{follow_port}/health").json())

        try:
            wait_until(lambda: health()["ready"], 120, "st follow ready", follow)
            ready_s = time.monotonic() - started
            began = time.monotonic()
            load(webhook_port, events, rate, acked)
            posting = time.monotonic() - began

            def drained() -> bool:
                now = health()
                return now["events"] >= len(acked) and not now["alert_backlog_batches"]

            try:
                wait_until(drained, 300, "follow draining the load", follow)
            except (RuntimeError, TimeoutError):
                print(follow_log.read_text()[-3000:])
                raise
            time.sleep(3.0)  # the last deliveries (and live flows commits)
            flows = health().get("flows_delay_seconds", {})
            load_after = os.getloadavg()[0]
            assert stop(follow) == 0, "st follow did not exit 0 on SIGTERM"
        finally:
            if follow.poll() is None:
                stop(follow)
            stop(receiver)
        arrived = {m.text: m.at for m in telegram.received()}
    rows = outbox.listing(lake, channel="telegram")
    latencies = []
    for row in rows:
        signature = row["alert_key"].split(":", 1)[0]
        if row["text"] in arrived and signature in acked:
            latencies.append(arrived[row["text"]] - acked[signature])
    found = len(set(lake.read(WEBHOOK_EVENTS, columns=["signature"]).column(0).to_pylist()))
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3)

    return {
        "backend": backend,
        "rate": int(rate),
        "posted_per_s": round(len(acked) / posting),
        "alerts": len(rows),
        "delivered": len(latencies),
        "p50_s": pct(0.5) if latencies else None,
        "p99_s": pct(0.99) if latencies else None,
        "max_s": round(latencies[-1], 3) if latencies else None,
        "posted": len(acked),
        "in_bronze": found,
        "lost": len(acked) - found,
        "ready_s": round(ready_s, 2),
        "flows_commits": flows.get("commits", 0),
        "flows_p50_s": flows.get("p50"),
        "flows_max_s": flows.get("max"),
        "load_before": round(load_before, 1),
        "load_after": round(load_after, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "kafka", "both"], default="both")
    parser.add_argument("--rates", type=float, nargs="+", default=[500.0, 2000.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-usd", type=float, default=4600.0)
    parser.add_argument(
        "--flows-live",
        type=float,
        default=3.0,
        help="follow.flows_live_seconds (0: gold.token_flows not kept live)",
    )
    args = parser.parse_args()
    backends = ["local", "kafka"] if args.backend == "both" else [args.backend]
    rows = []
    with tempfile.TemporaryDirectory(prefix="st-bench-follow-") as tmp:
        for backend in backends:
            broker = None
            if backend == "kafka":
                broker = KafkaBroker(Path(tmp) / "kafka", fsync_every_message=False)
                broker.start()
            try:
                for rate in args.rates:
                    runs = []
                    for n in range(args.repeat):
                        workdir = Path(tmp) / f"{backend}-{int(rate)}-{n}"
                        run = one_run(workdir, backend, rate, args.seconds, args.min_usd,
                                      broker.bootstrap if broker else None,
                                      args.flows_live)  # fmt: skip
                        print(run, flush=True)
                        runs.append(run)
                    ranked = sorted(
                        runs, key=lambda r: r["p99_s"] if r["p99_s"] is not None else 1e9
                    )
                    median = dict(ranked[len(ranked) // 2])
                    median["runs_p99_s"] = [r["p99_s"] for r in runs]
                    median["runs_lost"] = [r["lost"] for r in runs]
                    rows.append(median)
            finally:
                if broker is not None:
                    broker.stop()
    cols = ["backend", "rate", "posted_per_s", "alerts", "delivered", "p50_s", "p99_s",
            "max_s", "lost", "ready_s", "flows_commits", "flows_p50_s", "flows_max_s",
            "load_before", "load_after", "runs_p99_s"]  # fmt: skip
    write_results(RESULTS, cols, rows)


if __name__ == "__main__":
    main()
