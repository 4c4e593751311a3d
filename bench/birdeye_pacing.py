"""Pacing benchmark: the BirdEye client against the simulator's rate limit.

Runs the simulator with a rate limit (default 50 req/s) and drives the client,
configured at the same rate, for a fixed time; prints achieved req/s vs the limit
and the 429 count, and writes bench/results/birdeye_pacing.json.

Usage: .venv/bin/python -m bench.birdeye_pacing [--rate 50] [--seconds 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

from smarttrader_cli.config.schema import BirdeyeConfig
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.server import run_in_thread
from smarttrader_cli.sources.birdeye import TOKEN_HOLDERS, BirdeyeClient

RESULTS = Path(__file__).parent / "results" / "birdeye_pacing.json"


async def drive(
    config: BirdeyeConfig, seconds: float, tokens: list[str]
) -> tuple[int, float, dict]:
    """Issue holder requests from `concurrency` tasks until time is up."""
    async with BirdeyeClient(config, None) as client:
        deadline = time.monotonic() + seconds
        done = 0

        async def worker(i: int) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                token = tokens[(done + i) % len(tokens)]
                await client.get(TOKEN_HOLDERS, {"address": token, "offset": 0, "limit": 20})
                done += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(config.max_concurrency)))
        elapsed = time.monotonic() - start
        return done, elapsed, {"retries": client.stats.retries, "429": client.stats.rate_limited}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=float, default=50.0, help="sim limit and client rate (req/s)"
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--burst", type=int, default=5)
    args = parser.parse_args()

    settings = SimSettings(seed=5, wallets=60, tokens=10, trades=2000, rate_limit=args.rate)
    with run_in_thread(settings) as sim:
        tokens = [t.address for t in sim.market.listed_tokens]
        config = replace(
            BirdeyeConfig(),
            base_url=sim.base_url,
            rate_limit_rps=args.rate,
            burst=args.burst,
            max_concurrency=args.concurrency,
            timeout_seconds=5.0,
        )
        done, elapsed, client_stats = asyncio.run(drive(config, args.seconds, tokens))
        server = sim.stats()
    achieved = done / elapsed
    result = {
        "limit_rps": args.rate,
        "client_rps_config": args.rate,
        "burst": args.burst,
        "concurrency": args.concurrency,
        "seconds": round(elapsed, 2),
        "requests_ok": done,
        "achieved_rps": round(achieved, 2),
        "share_of_limit": round(achieved / args.rate, 4),
        "server_429": server.get("status 429", 0),
        "client_429": client_stats["429"],
        "client_retries": client_stats["retries"],
        "target_met": achieved >= 0.9 * args.rate and server.get("status 429", 0) == 0,
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"{'metric':<18} {'value':>10}")
    for key in (
        "limit_rps",
        "achieved_rps",
        "share_of_limit",
        "requests_ok",
        "server_429",
        "client_retries",
        "seconds",
        "target_met",
    ):
        print(f"{key:<18} {result[key]!s:>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
