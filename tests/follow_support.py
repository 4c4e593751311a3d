"""Helpers for `st follow` tests and its benchmark: a lake where simulated wallets are
ranked and SOL is priced, simulated swaps posted to `st webhook serve`, `st follow` and
`st webhook serve` as processes, and what a fake channel received matched to the outbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import SMART_WALLETS, TOKEN_PRICES
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from smarttrader_cli.stream.swaps import parse_swap
from tests.harness import free_port, wait_until

ST = Path(sys.executable).parent / "st"
AUTH = "follow-test-token"
SOL = "So11111111111111111111111111111111111111112"
META = CommitMeta("seed", "test", "h")


def swaps(count: int, start_time: int, seed: int = 7, spacing: int = 1) -> list[dict[str, Any]]:
    """`count` simulated Helius swaps with distinct signatures, from `start_time` on."""
    return enhanced_swaps(Market(SimSettings(seed=seed)), count, start_time, spacing)


def seed_lake(lake: Lake, events: list[dict[str, Any]], start: int, hours: int = 8) -> set[str]:
    """Rank every wallet that buys in `events` (elite) and price SOL at 150 USD every 5
    minutes from an hour before `start` for `hours`; returns the ranked wallets."""
    buyers = sorted(
        {leg.wallet for e in events for leg in parse_swap(e).legs if leg.direction == "buy"}
    )
    ranked = [{"wallet_address": w, "tier": "elite", "rank": i + 1} for i, w in enumerate(buyers)]
    lake.overwrite(SMART_WALLETS, pa.Table.from_pylist(ranked), META)
    now = datetime.now(UTC)
    points = [
        {"token_address": SOL, "unix_time": t, "price_usd": 150.0, "source": "test",
         "fetched_at": now, "run_id": "seed"}
        for t in range(start - 3600, start + hours * 3600, 300)
    ]  # fmt: skip
    lake.merge(TOKEN_PRICES, pa.Table.from_pylist(points, schema=TOKEN_PRICES.schema), META)
    return set(buyers)


def env_for(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.update(ST_CONFIG=str(config), ST_WEBHOOK_AUTH_TOKEN=AUTH, **extra)
    return env


def start_receiver(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`st webhook serve` (on `webhook.port` = `port`), ready."""
    proc = subprocess.Popen(
        [str(ST), "webhook", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200, 60,
               "st webhook serve", proc)  # fmt: skip
    return proc


def start_follow(
    env: dict[str, str], port: int, *args: str, stderr: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`st follow` (its /health on `port`), ready once /health answers."""
    proc = subprocess.Popen(
        [str(ST), "--log-format", "json", "follow", "--format", "json", *args], env=env,
        stdout=subprocess.PIPE, stderr=stderr,
    )  # fmt: skip
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/health").status_code in (200, 503),
               120, "st follow", proc)  # fmt: skip
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    """Signal `proc` and wait for it; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


def post(port: int, events: list[dict[str, Any]], per_request: int = 10) -> list[float]:
    """POST the events in arrays of `per_request`; the time each 200 came, per event."""
    acked: list[float] = []
    url = f"http://127.0.0.1:{port}/webhooks"
    with httpx.Client(headers={"Authorization": AUTH}, timeout=30) as client:
        for i in range(0, len(events), per_request):
            part = events[i : i + per_request]
            response = client.post(url, json=part)
            assert response.status_code == 200, response.text
            acked += [time.time()] * len(part)
    return acked


def follow_config(directory: Path, webhook_port: int, follow_port: int) -> dict[str, Any]:
    """The overrides every follow test uses: quick batches, loopback ports."""
    return {
        "webhook.port": webhook_port,
        "follow.port": follow_port,
        "follow.silver_interval_seconds": 5.0,
        "follow.flows_interval_seconds": 0,
        "follow.flows_live_seconds": 0,
        "follow.cursor_interval_seconds": 1.0,
        "follow.retry_check_seconds": 0.5,
        "memory.min_free_mb": 64,
    }


def ports() -> tuple[int, int]:
    return free_port(), free_port()
