"""Simulator → `st pipeline run` (a real subprocess) → the planted wallets are ranked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.tables import SMART_WALLETS, WALLET_PNL
from smarttrader_cli.report.data import cumulative_realized_pnl
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.server import RunningSim, run_in_thread

pytestmark = pytest.mark.e2e

MARKET = SimSettings(seed=11, wallets=80, tokens=10, trades=8000, helius_api_key="e2e-key")
HOOK_URL = "https://st.e2e/webhooks"
ST = str(Path(sys.executable).with_name("st"))  # the console script, as a user runs it


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    running = run_in_thread(MARKET)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, sim: RunningSim) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    config = {
        "lake": {"root": str(root / "lake")},
        "runtime": {"state_dir": str(root / "state")},
        "birdeye": {"base_url": sim.base_url, "rate_limit_rps": 300.0, "burst": 30},
        "helius": {"api_base_url": sim.base_url, "webhook_url": HOOK_URL, "max_addresses": 50},
        "memory": {"min_free_mb": 256},
    }
    (root / "st.yaml").write_text(yaml.safe_dump(config))
    return root


def st(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    clean.update(HELIUS_API_KEY="e2e-key", ST_WEBHOOK_AUTH_TOKEN="e2e-token", **(env or {}))
    return subprocess.run(
        [ST, "--config", str(workdir / "st.yaml"), *args],
        capture_output=True,
        text=True,
        env=clean,
        timeout=600,
    )


def ranked(workdir: Path) -> list[dict]:
    rows = AppContext(config_path=workdir / "st.yaml").lake.read(SMART_WALLETS).to_pylist()
    return sorted(rows, key=lambda r: r["rank"])


@pytest.fixture(scope="module")
def first_run(workdir: Path) -> subprocess.CompletedProcess:
    return st(workdir, "pipeline", "run", "--format", "json")


def test_pipeline_ranks_the_planted_smart_wallets_and_not_the_losers(
    first_run: subprocess.CompletedProcess, workdir: Path, sim: RunningSim
) -> None:
    assert first_run.returncode == 0, first_run.stderr[-3000:]
    summary = json.loads(first_run.stdout)
    assert [r["stage"] for r in summary] == [
        "bronze.tokens",
        "bronze.whales",
        "bronze.trades",
        "silver.pnl",
        "gold.rank",
        "helius.sync",
    ]
    assert all(r["status"] == "succeeded" and r["run_id"] for r in summary)
    assert all(r["rows_out"] > 0 for r in summary), summary
    truth = sim.market.truth()
    wallets = {r["wallet_address"] for r in ranked(workdir)}
    assert set(truth["smart_wallets"]) <= wallets
    assert not set(truth["losing_wallets"]) & wallets


def test_the_webhook_follows_the_ranking(
    first_run: subprocess.CompletedProcess, workdir: Path, sim: RunningSim
) -> None:
    hooks = httpx.get(f"{sim.base_url}/v0/webhooks", params={"api-key": "e2e-key"}).json()
    (hook,) = [h for h in hooks if h["webhookURL"] == HOOK_URL]
    expected = [r["wallet_address"] for r in ranked(workdir)][:50]
    assert hook["accountAddresses"] == expected and hook["authHeader"] == "e2e-token"


def test_report_realized_pnl_ends_at_silver_realized_pnl(
    first_run: subprocess.CompletedProcess, workdir: Path
) -> None:
    ctx = AppContext(config_path=workdir / "st.yaml")
    top = [r["wallet_address"] for r in ranked(workdir)][:5]
    series = cumulative_realized_pnl(ctx.lake, ctx.config, top)
    silver = {
        (r["wallet_address"]): r["realized_pnl"]
        for r in ctx.lake.read(WALLET_PNL).to_pylist()
        if r["token_address"] == "ALL_TOKENS"
    }
    for wallet in top:
        assert series[wallet][-1][1] == pytest.approx(silver[wallet], abs=1e-6)


def test_thresholds_from_env_and_yaml_change_the_ranking(
    first_run: subprocess.CompletedProcess, workdir: Path
) -> None:
    before = ranked(workdir)
    # env var: a higher PnL floor; no SQL touched
    result = st(
        workdir,
        "pipeline",
        "run",
        "--from",
        "gold.rank",
        "--to",
        "gold.rank",
        env={"ST_GOLD__MIN_TOTAL_PNL": "2000"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    after_env = ranked(workdir)
    assert after_env and len(after_env) < len(before)
    assert {r["wallet_address"] for r in after_env} == {
        r["wallet_address"] for r in before if r["total_pnl"] >= 2000
    }

    # YAML: a win-rate floor
    config = yaml.safe_load((workdir / "st.yaml").read_text())
    config["gold"] = {"min_win_rate": 0.9}
    (workdir / "st.yaml").write_text(yaml.safe_dump(config))
    try:
        result = st(workdir, "gold", "rank", "--format", "json")
        assert result.returncode == 0, result.stderr[-2000:]
        printed = json.loads(result.stdout)
        assert printed and all(r["win_rate"] >= 0.9 for r in printed)
        assert {r["wallet_address"] for r in ranked(workdir)} == {
            r["wallet_address"] for r in before if r["win_rate"] >= 0.9
        }
    finally:
        del config["gold"]
        (workdir / "st.yaml").write_text(yaml.safe_dump(config))


def test_a_failing_stage_stops_the_pipeline_with_exit_1(workdir: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((workdir / "st.yaml").read_text())
    config["birdeye"]["base_url"] = "http://127.0.0.1:9"  # nothing listens there
    config["birdeye"]["max_retries"] = 0
    config["lake"]["root"] = str(tmp_path / "lake")
    (tmp_path / "st.yaml").write_text(yaml.safe_dump(config))
    result = st(tmp_path, "pipeline", "run", "--format", "json")
    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert [r["status"] for r in summary][:2] == ["failed", "not run"]
    assert "pipeline stopped: stage bronze.tokens failed" in result.stderr
