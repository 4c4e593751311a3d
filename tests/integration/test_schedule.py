"""The production schedule, compressed to seconds, run by the real supercronic for a minute.

After one seeding cycle (the operator's first run), supercronic drives every stage of
crontab/smarttrader.crontab against the simulator while webhook events keep arriving.
Checks: every stage ran and succeeded, no two runs of a stage overlapped, overlapping
ticks were refused with exit 75 (logged by supercronic, which kept running), and the
tables advanced.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from smarttrader_cli.config import load_config
from smarttrader_cli.docs_gen import command_paths
from smarttrader_cli.lake.store import Lake
from smarttrader_cli.lake.tables import table_spec
from smarttrader_cli.ops.ledger import Ledger
from smarttrader_cli.ops.schedule import compress, parse_crontab
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.server import run_in_thread
from tests.harness import cached_binary, write_config
from tests.stream_support import helius_events, outbound, produce

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRONTAB = ROOT / "crontab" / "smarttrader.crontab"
RUN_SECONDS = 60
END = int(time.time()) // 3600 * 3600 - 3600
# Stages that need another stage's table to exist.
DEPENDS = {
    "gold rank": "silver pnl",
    "helius sync": "gold rank",
    "gold flows": "silver webhooks",
    "alerts run": "silver webhooks",
}
# What each stage writes: the schedule must move these forward.
WRITES = {
    "bronze.tokens": "bronze.token_metrics",
    "silver.pnl": "silver.wallet_pnl",
    "gold.rank": "gold.smart_wallets",
    "stream.drain": "bronze.webhook_events",
    "silver.webhooks": "silver.webhook_swaps",
    "gold.flows": "gold.token_flows",
}


def command_words(command: str) -> list[str]:
    """`st --log-format json bronze trades --x` → ["bronze", "trades"]."""
    words = command.split()[3:]
    return [w for w in words[:2] if not w.startswith("-")]


def _runs_in(process: psutil.Process, folder: Path) -> bool:
    """Whether `process` is one of this test's jobs (its working directory is `folder`)."""
    try:
        return Path(process.cwd()) == folder
    except (psutil.Error, OSError):
        return False


def supercronic() -> Path:
    return cached_binary("supercronic")


def intervals_overlap(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of runs of one stage whose [started_at, ended_at] intersect."""
    spans = sorted(
        (r["started_at"], r["ended_at"] or datetime.max.replace(tzinfo=r["started_at"].tzinfo),
         r["run_id"])
        for r in runs
    )  # fmt: skip
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]


def keep_producing(config: Path, settings: SimSettings, stop: threading.Event) -> int:
    """Publish a few new webhook events every second until `stop`; returns how many.

    The events are the simulated market's own (its planted smart wallets among them) and
    recent, so gold.flows has smart-money windows inside its lookback to recompute.
    """
    sent = 0
    start = int(time.time()) - 1800
    while not stop.is_set():
        events = helius_events(5, settings=settings, start_time=start + sent * 2)
        produce(config, outbound(events))
        sent += len(events)
        stop.wait(1.0)
    return sent


def every_stage_ran(lake: Lake, seeded: set[str], stages: set[str]) -> bool:
    """Every scheduled stage has a succeeded run since seeding, and the drain three."""
    done = Counter(
        r["stage"]
        for r in Ledger(lake).runs(limit=10_000)
        if r["run_id"] not in seeded and r["status"] == "succeeded"
    )
    return all(done[stage] >= 1 for stage in stages) and done["stream.drain"] >= 3


def test_compressed_schedule_runs_every_stage_without_overlap(tmp_path: Path) -> None:
    binary = supercronic()
    leaves = {" ".join(path) for path, leaf in command_paths() if leaf}
    jobs = parse_crontab(CRONTAB.read_text())
    missing = {" ".join(command_words(j.command)) for j in jobs} - leaves
    # A stage whose input table comes from a missing stage cannot run either.
    for _ in DEPENDS:
        missing |= {cmd for cmd, needs in DEPENDS.items() if needs in missing}
    present = [j for j in jobs if " ".join(command_words(j.command)) not in missing]
    if missing:
        warnings.warn(
            f"schedule test leaves out stages that cannot run yet: {sorted(missing)}",
            stacklevel=1,
        )
    stages = {".".join(command_words(j.command)) for j in present}

    sim_settings = SimSettings(
        seed=5, wallets=24, tokens=6, trades=1500, end_time=END, helius_api_key="HK"
    )
    with run_in_thread(sim_settings) as sim:
        config = write_config(
            tmp_path,
            {
                "birdeye.base_url": sim.base_url,
                "birdeye.rate_limit_rps": 500.0,
                "birdeye.burst": 50,
                "helius.api_base_url": sim.base_url,
                "helius.webhook_url": "http://127.0.0.1:9/webhooks",
                "tokens.limit": 6,
                "whales.refetch_after_hours": 0,  # each whales run fetches again
                "memory.min_free_mb": 64,
                "lake.vacuum_retention_hours": 0,
                "stream.max_latency_seconds": 0.5,
            },
        )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("ST_") or k == "ST_CACHE_DIR"
        }
        env.update(
            ST_CONFIG=str(config),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            HELIUS_API_KEY="HK",
            ST_WEBHOOK_AUTH_TOKEN="schedule-test-token",
        )

        # The first cycle, in dependency order, as an operator's first run would be.
        seed_start = int(time.time()) - 3600
        produce(config, outbound(helius_events(50, settings=sim_settings, start_time=seed_start)))
        for job in present:
            command = job.command.replace("--max-seconds 240", "--max-seconds 10")
            proc = subprocess.run(
                command, shell=True, env=env, cwd=tmp_path, capture_output=True, text=True,
                timeout=300,
            )  # fmt: skip
            assert proc.returncode == 0, f"seeding `{command}` failed:\n{proc.stderr[-2000:]}"

        lake = Lake.from_config(load_config(config, env=env))
        before = {
            stage: lake.version(table_spec(table))
            for stage, table in WRITES.items()
            if stage in stages
        }
        seeded = {r["run_id"] for r in Ledger(lake).runs(limit=1000)}

        # The drain follows for 8 s but is scheduled every 6 s: ticks must collide. Each
        # start costs about half a CPU second even when refused, so a faster schedule
        # starts more processes than 2 cores finish and they pile up without bound.
        fast = tmp_path / "fast.crontab"
        fast.write_text(
            compress(
                "\n".join(f"{j.expression} {j.command}" for j in present),
                fastest=6,
                slowest=30,
                replace=[("--max-seconds 240", "--follow --max-seconds 8")],
            )
        )
        log_path = tmp_path / "supercronic.log"
        stop = threading.Event()
        producer = threading.Thread(
            target=keep_producing, args=(config, sim_settings, stop), daemon=True
        )
        producer.start()
        with log_path.open("wb") as log:
            cron = subprocess.Popen(
                # -overlapping: supercronic would otherwise skip a busy job's tick itself;
                # here the stage lock alone must refuse the second run.
                [str(binary), "-json", "-overlapping", str(fast)],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            # At least the minute; on a loaded machine each run takes longer, so the schedule
            # is given until every stage has succeeded once and the drain three times.
            time.sleep(RUN_SECONDS)
            deadline = time.monotonic() + 4 * RUN_SECONDS
            while time.monotonic() < deadline and not every_stage_ran(lake, seeded, stages):
                assert cron.poll() is None, "supercronic exited on its own"
                time.sleep(2)
            assert cron.poll() is None, "supercronic exited on its own:\n" + log_path.read_text()
        finally:
            stop.set()
            producer.join(timeout=30)
            # SIGTERM: supercronic stops scheduling and waits for running jobs. Its jobs
            # run in process groups of their own, so the ones still alive after it are
            # found by ancestry and killed, never left behind for the next test.
            leftovers: list[psutil.Process] = []
            with contextlib.suppress(psutil.NoSuchProcess):
                leftovers = psutil.Process(cron.pid).children(recursive=True)
            os.killpg(cron.pid, signal.SIGTERM)
            try:
                cron.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(cron.pid, signal.SIGKILL)
                cron.wait(timeout=30)
            leftovers += [p for p in psutil.process_iter() if _runs_in(p, tmp_path)]
            for leftover in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    leftover.kill()

    log_text = log_path.read_text()
    runs = [r for r in Ledger(lake).runs(limit=10_000) if r["run_id"] not in seeded]
    by_stage: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_stage.setdefault(run["stage"], []).append(run)

    refused = log_text.count("exit status 75")
    print(
        f"runs per stage: { {k: len(v) for k, v in sorted(by_stage.items())} }, refused: {refused}"
    )
    assert set(by_stage) >= stages, f"stages that never ran: {stages - set(by_stage)}"
    # Jobs still running when the test SIGTERMs supercronic's process group are interrupted
    # (and say so in the ledger); every other run must have succeeded.
    failed = [
        (r["stage"], r["error"])
        for r in runs
        if r["status"] != "succeeded" and r["error"] != "interrupted"
    ]
    assert failed == [], f"runs that did not succeed: {failed}\n{log_text[-3000:]}"
    for stage, stage_runs in by_stage.items():
        assert intervals_overlap(stage_runs) == [], f"{stage} runs overlapped"
    # Overlapping ticks were refused by the lock, reported as exit 75, and cron went on.
    assert "exit status 75" in log_text, log_text[-3000:]
    exits = {
        line.split("exit status ", 1)[1].split('"')[0].split()[0].rstrip("\\")
        for line in log_text.splitlines()
        if "exit status " in line
    }
    assert exits == {"75"}, f"unexpected job exit statuses {exits}:\n{log_text[-3000:]}"
    assert len(by_stage["stream.drain"]) >= 3
    # Every table a scheduled stage writes moved forward during the minute.
    after = {stage: lake.version(table_spec(WRITES[stage])) for stage in before}
    stalled = {s: (before[s], after[s]) for s in before if not (after[s] or -1) > (before[s] or -1)}
    # The simulated market's trades end at END, so after seeding `st bronze trades` fetches
    # nothing new: an incremental `st silver pnl` then has nothing to recompute and commits
    # nothing (its cost follows the work), which its runs must say (no rows written).
    pnl_runs = [r for r in by_stage.get("silver.pnl", []) if r["status"] == "succeeded"]
    if "silver.pnl" in stalled and pnl_runs and all(not r["rows_out"] for r in pnl_runs):
        del stalled["silver.pnl"]
    assert stalled == {}, f"tables that did not advance (before, after): {stalled}"
