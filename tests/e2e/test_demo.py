"""`st demo`, the README's first command, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ST = str(Path(sys.executable).with_name("st"))
FLAG_LINES = (
    "planted bots flagged bot",
    "planted snipers flagged sniper",
    "planted distributors flagged distributor",
    "pool/vault holders flagged off_curve",
    "exchange holders flagged exchange",
    "burn holders flagged burn",
)


def run_demo(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.pop("HELIUS_API_KEY", None)
    started = time.monotonic()
    result = subprocess.run(
        [ST, "demo", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    return result, time.monotonic() - started


def test_demo_prints_the_ranking_and_cleans_up(tmp_path: Path) -> None:
    result, seconds = run_demo(cwd=tmp_path)
    print(f"st demo took {seconds:.1f}s")  # measured in bench/, not asserted here
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "pipeline summary" in out and "smart wallets found by st" in out
    # every stage ran: batch (with the Helius sync against the sim) and stream
    for stage in (
        "bronze.tokens",
        "bronze.whales",
        "bronze.trades",
        "silver.pnl",
        "gold.rank",
        "helius.sync",
        "bronze.prices",
        "follow",
        "silver.webhooks",
        "gold.flows",
    ):
        assert re.search(rf"{re.escape(stage)}[\s│]+succeeded", out), stage
    # `st follow` drained the simulator's deliveries and sent alerts to the fake Telegram
    sent = re.search(r"(\d+) alerts sent; webhook → Telegram p50 ([\d.]+) s, p99 ([\d.]+) s "
                     r"\((\d+) events followed\)", out)  # fmt: skip
    assert sent and int(sent.group(1)) > 0 and int(sent.group(4)) > 0, out[-3000:]
    assert "alerts st follow sent to Telegram" in out
    smart = re.search(r"planted smart wallets ranked\s+(\d+) of (\d+)", out)
    losing = re.search(r"planted losing wallets ranked\s+(\d+) of (\d+)", out)
    assert smart and losing, out
    assert smart.group(1) == smart.group(2) != "0"
    assert losing.group(1) == "0" and losing.group(2) != "0"
    # the planted bots, snipers, distributors and non-trader holders: all flagged, none ranked
    for name in FLAG_LINES:
        counts = re.search(rf"{re.escape(name)}\s+(\d+) of (\d+) seen \((\d+) ranked\)", out)
        assert counts and counts.group(1) == counts.group(2) != "0", (name, out)
        assert counts.group(3) == "0", name
    # whole base58 addresses, one per ranked row
    assert len(re.findall(r"^\s+\d+\s+[1-9A-HJ-NP-Za-km-z]{32,44}\s", out, re.M)) >= 5
    lake = re.search(r"^lake\s+(\S+) \(removed", out, re.M)
    assert lake and not Path(lake.group(1)).exists()
    assert not list(tmp_path.iterdir())  # nothing left in the working directory


def test_demo_keeps_a_given_dir(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result, _ = run_demo("--dir", str(target), "--top", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (target / "smarttrader.yaml").is_file()
    assert (target / "lake" / "gold" / "smart_wallets" / "_delta_log").is_dir()
    assert f"st --config {target / 'smarttrader.yaml'} lake tables" in result.stdout
