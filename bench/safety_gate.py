"""Safety gate benchmark: what the token safety gate adds to an alert, cold and cached.

Against the simulator's /defi/token_security and /defi/multi_price over loopback, it
judges the buy alerts of `--tokens` tokens three ways, side by side in each round:
cold (an empty cache: the lookups, then one merge into bronze.token_security), from
the lake (a new gate, as the next `st alerts run` makes: one read of the cache table),
and from memory (the same gate again, as `st follow` keeps it). Prints the medians of
`--repeat` rounds, their ratios and the BirdEye requests each made, and writes
bench/results/safety_gate.json.

Usage: .venv/bin/python -m bench.safety_gate [--tokens 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from smarttrader_cli.alerts.outbox import Alert
from smarttrader_cli.alerts.safety import SafetyGate
from smarttrader_cli.config.schema import Config
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.security_api import failing_token
from smarttrader_cli.sim.server import run_in_thread

RESULTS = Path(__file__).parent / "results" / "safety_gate.json"
META = CommitMeta("bench", "alerts.run", "bench")


def _timed(gate: SafetyGate, alerts: list[Alert]) -> tuple[float, int]:
    before = gate.stats.requests
    start = time.perf_counter()
    gate.apply(alerts, META)
    return time.perf_counter() - start, gate.stats.requests - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=10, help="distinct tokens alerted on")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    settings = SimSettings(seed=5, wallets=12, tokens=max(args.tokens + 1, 3), trades=300)
    times: dict[str, list[float]] = {"cold": [], "lake": [], "memory": []}
    requests: dict[str, int] = {}
    with run_in_thread(settings) as sim, tempfile.TemporaryDirectory() as tmp:
        config = Config()
        config.birdeye.base_url = sim.base_url
        config.birdeye.rate_limit_rps = 0
        failing = failing_token(sim.market)  # its 500s are a retry's backoff, not the gate
        traded = [t.address for t in sim.market.tokens if t.kind != "quote"]
        tokens = [t for t in traded if t != failing][: args.tokens]
        alerts = [
            Alert("wallet_buy", t, f"sig{i}:w", f"w bought {t}") for i, t in enumerate(tokens)
        ]
        for round_ in range(args.repeat):
            lake = Lake(os.path.join(tmp, f"lake{round_}"))
            cold = SafetyGate(lake, config, None)
            again = SafetyGate(lake, config, None)
            for name, gate in (("cold", cold), ("lake", again), ("memory", again)):
                seconds, asked = _timed(gate, alerts)
                times[name].append(seconds)
                requests[name] = asked
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "tokens": len(tokens),
        "repeat": args.repeat,
        "median_seconds": medians,
        "cold_over_lake": medians["cold"] / medians["lake"],
        "lake_over_memory": medians["lake"] / medians["memory"],
        "requests": requests,
        "load_average": os.getloadavg(),
        "host": platform.node(),
    }
    for name, seconds in medians.items():
        print(f"{name:>6}: median {seconds * 1000:8.2f} ms, {requests[name]} BirdEye requests")
    print(
        f"cold / lake {result['cold_over_lake']:.1f}x, lake / memory "
        f"{result['lake_over_memory']:.1f}x; load average {os.getloadavg()[0]:.2f}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
