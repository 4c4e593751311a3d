"""`st demo`: the simulator in the background, a temporary config pointing at it, the pipeline."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.sim.server import RunningSim
    from smarttrader_cli.sim.telegram import FakeTelegram
    from smarttrader_cli.stages.contract import Stage, StageContext, StageResult

log = logging.getLogger("st.demo")

# Small enough to finish in well under two minutes on 2 cores, big enough for every
# planted kind (smart, faded, losing, bots, snipers, distributors, pools...) to show up.
DEMO_MARKET = {"seed": 7, "wallets": 120, "tokens": 12, "trades": 12_000}
# Demo-only credentials: the simulator accepts any key; never real secrets.
DEMO_ENV = {
    "HELIUS_API_KEY": "demo-helius-key",
    "ST_WEBHOOK_AUTH_TOKEN": "demo-webhook-token",
    "ST_TELEGRAM_BOT_TOKEN": "4242:demo-bot-token",
}
# `st follow` stops once nothing new arrived for this long (the deliveries are done).
DEMO_FOLLOW_IDLE_SECONDS = 3.0
# Helius deliveries the simulator sends to the receiver for the stream half.
DEMO_WEBHOOK_EVENTS = 400


@dataclass
class DemoWorkspace:
    """Where the demo keeps its config, lake and state, and whether it is removed after."""

    root: Path
    keep: bool
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.config_path = self.root / "smarttrader.yaml"

    @property
    def lake(self) -> Path:
        return self.root / "lake"


@contextmanager
def workspace(directory: Path | None, keep: bool) -> Iterator[DemoWorkspace]:
    """A given directory (always kept) or a fresh temporary one (removed unless `keep`)."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield DemoWorkspace(directory.resolve(), keep=True)
        return
    root = Path(tempfile.mkdtemp(prefix="st-demo-"))
    space = DemoWorkspace(root, keep)
    try:
        yield space
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def demo_config(
    space: DemoWorkspace, sim_url: str, webhook_url: str, webhook_port: int, telegram_url: str
) -> dict[str, Any]:
    """Embedded defaults (local lake, DuckDB, local stream) pointed at the simulator, and
    alerts to the simulated Telegram."""
    return {
        "engine": "duckdb",
        "lake": {"root": str(space.lake)},
        "runtime": {"state_dir": str(space.root / "state"), "log_dir": str(space.root / "logs")},
        "discovery": {"top_traders": True, "gainers": True},
        "birdeye": {
            "base_url": sim_url,
            "rate_limit_rps": 400.0,
            "burst": 40,
            "max_concurrency": 8,
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 1.0,
        },
        "helius": {"api_base_url": sim_url, "webhook_url": webhook_url},
        "stream": {"backend": "local", "local_dir": str(space.root / "stream")},
        "webhook": {
            "host": "127.0.0.1",
            "port": webhook_port,
            "spool_dir": str(space.root / "spool"),
        },
        # the demo is small: do not refuse to start on a busy machine
        "memory": {"min_free_mb": 256},
        # `st follow` without its HTTP port; silver and flows run after it, as stages
        "follow": {"port": 0, "flows_interval_seconds": 0, "flows_live_seconds": 0},
        "alerts": {
            "channels": ["telegram"],
            "telegram": {"base_url": telegram_url, "chat_id": "-1001", "rate_limit_rps": 0},
            "rules": {"wallet_buy": {"min_usd": 4000.0}, "exit": {"min_usd": 2000.0}},
        },
    }


def write_config(space: DemoWorkspace, sim_url: str, webhook_port: int, telegram_url: str) -> str:
    """Write the demo config file into the workspace; returns the receiver's webhook URL."""
    webhook_url = f"http://127.0.0.1:{webhook_port}/webhooks"
    header = "# written by `st demo`: the simulator's URLs and a lake in this folder\n"
    config = demo_config(space, sim_url, webhook_url, webhook_port, telegram_url)
    body = yaml.safe_dump(config, sort_keys=False)
    space.config_path.write_text(header + body)
    return webhook_url


@contextmanager
def simulator() -> Iterator[RunningSim]:
    """The simulator on a free loopback port, stopped on exit."""
    from smarttrader_cli.sim.market import SimSettings
    from smarttrader_cli.sim.server import run_in_thread

    sim = run_in_thread(SimSettings(**DEMO_MARKET))  # type: ignore[arg-type]
    log.info("simulator serving at %s", sim.base_url)
    try:
        yield sim
    finally:
        sim.stop()


@contextmanager
def demo_env() -> Iterator[None]:
    """Demo credentials in the environment for the demo's duration (real ones win)."""
    added = {k: v for k, v in DEMO_ENV.items() if not os.environ.get(k)}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def planted_check(rows: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """How the ranking compares with what the simulator planted."""
    ranked = {r["wallet_address"] for r in rows}
    smart, losing = set(truth["smart_wallets"]), set(truth["losing_wallets"])
    return {
        "planted_smart_ranked": len(smart & ranked),
        "planted_smart": len(smart),
        "planted_losing_ranked": len(losing & ranked),
        "planted_losing": len(losing),
    }


# The flag each planted label must earn in gold.wallet_flags (contract 2 of the flags).
FLAG_OF_LABEL = {
    "bot": "bot",
    "sniper": "sniper",
    "distributor": "distributor",
    "pool": "off_curve",
    "exchange": "exchange",
    "burn": "burn",
}


def flag_check(
    flags: list[dict[str, Any]], ranked: list[dict[str, Any]], labels: dict[str, str]
) -> dict[str, dict[str, int]]:
    """Per planted label: how many were planted, seen by gold, flagged as they should be
    (smart: flagged at all), and ranked."""
    seen = {r["wallet_address"]: set(filter(None, (r["flags"] or "").split(","))) for r in flags}
    ranked_set = {r["wallet_address"] for r in ranked}
    out: dict[str, dict[str, int]] = {}
    for label in (*FLAG_OF_LABEL, "smart", "faded"):
        planted = [a for a, lab in labels.items() if lab == label]
        want = FLAG_OF_LABEL.get(label)
        out[label] = {
            "planted": len(planted),
            "seen": sum(a in seen for a in planted),
            "flagged": sum(
                bool(seen.get(a)) if want is None else want in seen.get(a, ()) for a in planted
            ),
            "ranked": sum(a in ranked_set for a in planted),
        }
    return out


def flag_lines(check: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """The demo summary's lines for the planted kinds gold.wallet_flags must catch."""
    names = {
        "bot": "planted bots flagged bot",
        "sniper": "planted snipers flagged sniper",
        "distributor": "planted distributors flagged distributor",
        "pool": "pool/vault holders flagged off_curve",
        "exchange": "exchange holders flagged exchange",
        "burn": "burn holders flagged burn",
    }
    return [
        (name, f"{c['flagged']} of {c['seen']} seen ({c['ranked']} ranked)")
        for label, name in names.items()
        for c in [check[label]]
    ]


def reserve_port() -> socket.socket:
    """A bound loopback socket: its port goes into the config before the receiver starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def receiver(config: Config, auth_token: str, sock: socket.socket) -> Iterator[None]:
    """`st webhook serve`'s app on the reserved socket in a thread; flushed and stopped on exit."""
    import uvicorn

    from smarttrader_cli.stream.backend import open_producer
    from smarttrader_cli.stream.server import create_app

    app = create_app(config, open_producer(config), auth_token)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="st-demo-receiver", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo webhook receiver did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(30)


def stream_stages(
    sim: RunningSim,
    sock: socket.socket,
    webhook_url: str,
    results: dict[str, StageResult],
    events: int = DEMO_WEBHOOK_EVENTS,
) -> list[Stage]:
    """The stream half as pipeline steps: bronze prices, then the simulator's deliveries →
    receiver → `st follow` (alerts to the simulated Telegram) while they arrive, then
    silver (all merged already) and the flows.

    The follow and gold.flows results land in `results` for printing.
    """
    from smarttrader_cli.stages import follow, prices, silver_webhooks
    from smarttrader_cli.stages.contract import Stage
    from smarttrader_cli.stages.gold import flows

    def deliver_and_follow(ctx: StageContext) -> StageResult:
        from smarttrader_cli.errors import StageError
        from smarttrader_cli.follow.service import FollowLimits
        from smarttrader_cli.sim.webhooks import emit_webhooks

        token = ctx.secrets.webhook_auth_token or ""
        limits = FollowLimits(max_seconds=180, idle_seconds=DEMO_FOLLOW_IDLE_SECONDS)
        done: dict[str, Any] = {}

        def run_follow() -> None:
            try:
                done["result"] = follow.run(ctx, limits=limits)
            except BaseException as exc:
                done["error"] = exc
                limits.stop.set()

        runner = threading.Thread(target=run_follow, name="st-demo-follow")
        runner.start()
        try:
            with receiver(ctx.config, token, sock):
                sent = emit_webhooks(
                    webhook_url, sim.state.settings, events, token, batch_size=20,
                    duplicate_rate=0.05,
                )  # fmt: skip
        finally:
            runner.join()
        if "error" in done:
            raise done["error"]
        accepted = sent.statuses.get(200, 0)
        if accepted != sent.posts:
            raise StageError(f"the receiver refused deliveries: HTTP statuses {sent.statuses}")
        results[follow.run.name] = done["result"]
        return done["result"]

    def kept_flows(ctx: StageContext) -> StageResult:
        results[flows.name] = flows(ctx)
        return results[flows.name]

    return [
        prices.run,
        Stage(
            follow.run.name,
            "simulated Helius → st webhook serve → st follow → Telegram",
            follow.run.writes,
            deliver_and_follow,
        ),
        silver_webhooks.run,
        Stage(flows.name, flows.command, flows.writes, kept_flows),
    ]


def sent_alerts(lake: Any, telegram: FakeTelegram) -> list[dict[str, Any]]:
    """The alerts the simulated Telegram received, newest first, each with its latency:
    from the receiver taking in the event that raised it to the message arriving (None
    for a confluence, which no single event raised)."""
    from smarttrader_cli.alerts.outbox import listing
    from smarttrader_cli.lake.tables import WEBHOOK_EVENTS

    arrived = {m.text: m.at for m in telegram.received()}
    events = lake.read(WEBHOOK_EVENTS, columns=["signature", "received_at"])
    received = {
        s: t.timestamp()
        for s, t in zip(*(events.column(c).to_pylist() for c in events.column_names), strict=True)
        if t is not None
    }
    rows = []
    for row in listing(lake, channel="telegram", state="sent"):
        at = arrived.get(row["text"])
        signature = (row["alert_key"] or "").split(":", 1)[0]
        latency = at - received[signature] if at is not None and signature in received else None
        rows.append({"rule": row["rule"], "alert": row["text"], "latency_s": latency})
    return rows
