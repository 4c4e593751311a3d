"""`st sim serve` → `st pipeline run` (subprocesses, over HTTP) → the planted wallets' flags.

Every planted bot, sniper, distributor and non-trader holder (pool and vault accounts,
exchange, burn) is flagged in gold.wallet_flags with the flag its behaviour earns and none
is ranked; every planted smart wallet is unflagged and ranked. Discovery is on, so the
followed wallets include each token's top traders and the gainers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from smarttrader_cli.context import AppContext
from smarttrader_cli.demo import FLAG_OF_LABEL, flag_check
from smarttrader_cli.lake.tables import SMART_WALLETS, WALLET_FLAGS, WALLET_SOURCES, WHALE_HOLDERS
from smarttrader_cli.sim.market import Market, SimSettings

pytestmark = pytest.mark.e2e

END = int(time.time()) // 3600 * 3600
MARKET = SimSettings(seed=7, wallets=120, tokens=12, trades=12_000, end_time=END)
ST = str(Path(sys.executable).with_name("st"))
WALLET_LABELS = ("bot", "sniper", "distributor")  # the others are holders that never trade


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    port = free_port()
    args = ["sim", "serve", "--port", str(port), "--seed", str(MARKET.seed)]
    args += ["--wallets", str(MARKET.wallets), "--tokens", str(MARKET.tokens)]
    args += ["--trades", str(MARKET.trades), "--end-time", str(END)]
    server = subprocess.Popen([ST, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "st sim serve did not start"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, sim_url: str) -> AppContext:
    root = tmp_path_factory.mktemp("flags")
    config = {
        "lake": {"root": str(root / "lake")},
        "runtime": {"state_dir": str(root / "state")},
        "birdeye": {"base_url": sim_url, "rate_limit_rps": 300.0, "burst": 30},
        "discovery": {"top_traders": True, "gainers": True},
        "memory": {"min_free_mb": 256},
    }
    path = root / "st.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    result = subprocess.run(
        [ST, "--config", str(path), "pipeline", "run", "--to", "gold.rank"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return AppContext(config_path=path)


def test_planted_wallets_are_flagged_for_what_they_do_and_smart_ones_ranked(
    app: AppContext,
) -> None:
    market = Market(MARKET)
    labels = market.labels()
    flags = app.lake.read(WALLET_FLAGS).to_pylist()
    ranked = app.lake.read(SMART_WALLETS).to_pylist()
    check = flag_check(flags, ranked, labels)
    # holders that never trade: those of every token whose holders were fetched
    fetched = set(app.lake.read(WHALE_HOLDERS)["token_address"].to_pylist())
    accounts = {a for t in market.tokens if t.address in fetched for _, a in market.accounts_of(t)}
    for label, flag in FLAG_OF_LABEL.items():
        counts = check[label]
        planted = [a for a, lab in labels.items() if lab == label]
        expected = len(planted) if label in WALLET_LABELS else len(accounts & set(planted))
        # every planted one was seen, carries its flag and is not ranked
        assert expected > 0 and counts["seen"] == counts["flagged"] == expected, (
            label,
            flag,
            counts,
        )
        assert counts["ranked"] == 0, (label, counts)
    smart = check["smart"]
    assert smart["planted"] == smart["ranked"] > 0 and smart["flagged"] == 0, smart
    # discovery added wallets, recorded with their source
    sources = {r["source"] for r in app.lake.read(WALLET_SOURCES).to_pylist()}
    assert sources == {"top_traders", "gainers"}
