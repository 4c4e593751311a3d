"""Soak the stream path through broker outages: acknowledged events lost or duplicated.

Each trial starts a private single-node Kafka broker and `st webhook serve` on it, posts
`--events` one-event webhooks from 4 threads, stops (SIGTERM) or kills (SIGKILL) the broker
3 s in, starts it again 10 s later, waits for the spool to be re-published, drains the
topic into a fresh lake, and counts the events that got a 200 but are not in
bronze.webhook_events (lost) or are there twice (duplicated). It is the integration test
`test_outage_under_load_loses_nothing_and_duplicates_nothing`, looped and counted; run it
outside CI (a trial takes 30-60 s):

    .venv/bin/python -m bench.soak_outage --trials 30 --fault stop --fault kill

Prints one line per trial and a table per fault; writes bench/results/soak_outage-*.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from bench.report import write_results
from tests.harness import KafkaBroker, wait_until
from tests.integration.test_stream_kafka import TOKEN, Server, drain, kafka_config
from tests.stream_support import (
    event_signatures,
    helius_events,
    post_through_an_outage,
)

ROOT = Path(__file__).resolve().parents[1]


def trial(workdir: Path, fault: str, events_count: int, seed: int) -> dict[str, Any]:
    """One outage under load; what was acknowledged, lost and duplicated."""
    broker = KafkaBroker(workdir / "kafka")
    broker.start()
    server: Server | None = None
    try:
        config = kafka_config(workdir, broker, **{"stream.producer_timeout_seconds": 2})
        server = Server(config)
        events = helius_events(events_count, seed=seed)
        acked, failed = post_through_an_outage(server.url, TOKEN, events, broker, fault)
        wait_until(lambda: server.status()["spool_depth"] == 0, 180, "spool re-published")
        status = server.status()
        server.stop()
        server = None
        drain(config)
        counts = Counter(event_signatures(config))
        return {
            "fault": fault,
            "seed": seed,
            "posted": len(events),
            "acknowledged": len(acked),
            "refused": len(failed),
            "spooled": status.get("spooled", 0),
            "lost": sum(1 for s in acked if s not in counts),
            "lost_signatures": [s for s in acked if s not in counts],
            "duplicated": sum(1 for s in acked if counts.get(s, 0) > 1),
            "load_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if server is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="Trials per fault.")
    parser.add_argument("--fault", action="append", choices=["stop", "kill"], default=[])
    parser.add_argument("--events", type=int, default=6000, help="Events posted per trial.")
    parser.add_argument(
        "--first-seed", type=int, default=1000, help="Seed of the first trial (resume a soak)."
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="Copy the folder of a trial that lost events (broker data and logs, spool, lake) here.",
    )
    args = parser.parse_args()
    faults = args.fault or ["stop", "kill"]
    rows = []
    for fault in faults:
        for i in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="st-soak-") as tmp:
                started = time.perf_counter()
                row = trial(Path(tmp), fault, args.events, seed=args.first_seed + i)
                row["seconds"] = round(time.perf_counter() - started, 1)
                if row["lost"] and args.keep:
                    kept = args.keep / f"{fault}-{i}"
                    shutil.copytree(tmp, kept, symlinks=True)
                    row["kept"] = str(kept)
            rows.append(row)
            print(orjson.dumps(row).decode(), flush=True)
    summary = []
    for fault in faults:
        mine = [r for r in rows if r["fault"] == fault]
        summary.append(
            {
                "fault": fault,
                "trials": len(mine),
                "acknowledged": sum(r["acknowledged"] for r in mine),
                "spooled": sum(r["spooled"] for r in mine),
                "lost": sum(r["lost"] for r in mine),
                "duplicated": sum(r["duplicated"] for r in mine),
                "trials_with_loss": sum(1 for r in mine if r["lost"]),
            }
        )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    write_results(
        ROOT / "bench" / "results" / f"soak_outage-{stamp}.json",
        list(summary[0]),
        summary,
    )
    (ROOT / "bench" / "results" / f"soak_outage-{stamp}-trials.json").write_bytes(
        orjson.dumps(rows, option=orjson.OPT_INDENT_2)
    )


if __name__ == "__main__":
    main()
