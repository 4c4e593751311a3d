"""`st helius sync` against the simulator's Helius webhook-management endpoints over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import SMART_WALLETS
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.server import RunningSim, run_in_thread

pytestmark = pytest.mark.integration

HOOK_URL = "https://st.example/webhooks"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    running = run_in_thread(SimSettings(wallets=20, tokens=5, trades=200, helius_api_key="HK"))
    yield running
    running.stop()


@pytest.fixture
def config(
    st_config: Callable[..., Path], sim: RunningSim, monkeypatch: pytest.MonkeyPatch
) -> Path:
    for var in [v for v in os.environ if v.startswith("ST_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("HELIUS_API_KEY", "HK")
    monkeypatch.setenv("ST_WEBHOOK_AUTH_TOKEN", "tok")
    return st_config(helius__api_base_url=sim.base_url, helius__webhook_url=HOOK_URL,
                     helius__max_addresses=2)  # fmt: skip


def rank(config: Path, wallets: list[str]) -> None:
    rows = [{"wallet_address": w, "rank": i + 1} for i, w in enumerate(wallets)]
    AppContext(config_path=config).lake.overwrite(
        SMART_WALLETS, pa.Table.from_pylist(rows), CommitMeta("r", "gold.rank", "h")
    )


def hooks(sim: RunningSim) -> list[dict]:
    response = httpx.get(f"{sim.base_url}/v0/webhooks", params={"api-key": "HK"})
    return [h for h in response.json() if h["webhookURL"] == HOOK_URL]


def st(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_sync_creates_then_edits_only_on_change(config: Path, sim: RunningSim) -> None:
    rank(config, ["W1", "W2", "W3"])
    edits = sim.stats()["webhook_edits"]

    code, out, _ = st(config, "helius", "sync", "--dry-run", "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"change": "added", "wallet_address": w} for w in ("W1", "W2")]
    assert hooks(sim) == [] and sim.stats()["webhook_edits"] == edits

    code, out, _ = st(config, "helius", "sync")
    assert code == 0 and "create" in out
    (hook,) = hooks(sim)
    assert hook["accountAddresses"] == ["W1", "W2"]
    assert (hook["authHeader"], hook["webhookType"], hook["transactionTypes"]) == (
        "tok",
        "enhanced",
        ["SWAP", "TRANSFER", "UNKNOWN"],
    )
    assert sim.stats()["webhook_edits"] == edits + 1

    code, out, _ = st(config, "helius", "sync")  # unchanged: no edit, no credits spent
    assert code == 0 and "already follows exactly these wallets" in out
    assert sim.stats()["webhook_edits"] == edits + 1

    rank(config, ["W3", "W1", "W2"])
    code, out, _ = st(config, "helius", "sync")
    assert code == 0 and "update" in out
    (hook,) = hooks(sim)
    assert hook["accountAddresses"] == ["W3", "W1"]
    assert sim.stats()["webhook_edits"] == edits + 2


def test_wrong_api_key_is_one_line_with_the_status(
    config: Path, sim: RunningSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    rank(config, ["W1"])
    monkeypatch.setenv("HELIUS_API_KEY", "wrong")
    code, _, err = st(config, "helius", "sync")
    assert code == 1
    assert (
        err.strip().splitlines()[-1]
        == "st: error: Helius GET /v0/webhooks answered HTTP 401: invalid api key"
    )
