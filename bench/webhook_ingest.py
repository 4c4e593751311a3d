"""Webhook ingest benchmark: `st webhook serve` under wrk load, 1-event Helius payloads.

Starts the receiver as its own process (local backend, and Kafka with a single-node
broker from the project cache), drives it from a separate `wrk` process on loopback with
a unique signature per event, and reports sustained requests/s, p50/p99 latency, non-2xx
answers and the zero-loss check (every event of every 200 is in the log/topic after a
graceful stop). `--events N` sends N events per request (Helius batches under load).
Writes bench/results/webhook_ingest.json.

The Kafka broker keeps Kafka's default flush policy (the OS writes the page cache back;
production durability with acks=all comes from replication) unless `--broker-fsync`
makes it fsync every message, as the tests' broker does (`kafka-fsync` in the results).
With `--repeat N` each configuration runs N times and the run with the median req/s is
reported, with all runs' numbers alongside. Each measured run follows `--warmup` seconds
of the same load (the broker's JIT). Besides the server's CPU per request, the broker's
and wrk's are recorded: on a shared machine, two cores divided by their sum says what the
receiver could sustain better than a req/s squeezed by other people's jobs.

Usage: .venv/bin/python -m bench.webhook_ingest [--backend local|kafka|both] [--seconds 20]
       [--connections 32] [--events 1] [--repeat 3] [--warmup 3] [--broker-fsync]
       [--baseline DIR] [--set KEY=VALUE ...]
       (needs `wrk`: on PATH, or the one scripts/install-deps.sh puts into the project cache)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import yaml

from bench.report import write_results
from smarttrader_cli.config import load_config
from smarttrader_cli.ops.cache import bin_dir
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.webhooks import enhanced_swaps
from tests.harness import KafkaBroker, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "webhook_ingest.json"
ST = Path(sys.executable).parent / "st"
TOKEN = "bench-token"


def wrk_binary() -> str:
    """wrk on PATH, else the one scripts/install-deps.sh unpacked into the project cache."""
    cached = bin_dir() / "wrk"
    found = shutil.which("wrk") or (str(cached) if os.access(cached, os.X_OK) else None)
    if found is None:
        sys.exit(f"wrk is not installed (not on PATH, no {cached}): run scripts/install-deps.sh")
    return found


LUA = r"""
local template = [==[%s]==]
local counter = 0
local tid = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  tid = tonumber(tid) or 0
end
function request()
  counter = counter + 1
  local sig = string.format("%s%%d%%011d", tid, counter)
  local n = 0
  local body = string.gsub(template, "SIGNATURE_PLACEHOLDER", function()
    n = n + 1
    return sig .. "e" .. n
  end)
  return wrk.format("POST", "/webhooks", {["Authorization"] = "%s",
    ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%%d non2xx=%%d errors=%%d p50=%%d p99=%%d mean=%%d\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def payload_template(events: int = 1) -> str:
    batch = enhanced_swaps(Market(SimSettings(seed=3)), events, start_time=1_760_000_000)
    for event in batch:
        event["signature"] = "SIGNATURE_PLACEHOLDER"
    return orjson.dumps(batch).decode()


def bench_config(directory: Path, overrides: dict[str, Any]) -> Path:
    """A config file of only what differs from the defaults, so that an older version's
    server (--baseline), which refuses keys it does not know, reads it too."""
    settings: dict[str, Any] = {
        "lake.root": directory / "lake",
        "runtime.state_dir": directory / "state",
        "runtime.log_dir": directory / "logs",
        "webhook.spool_dir": directory / "spool",
        "stream.local_dir": directory / "stream",
        **overrides,
    }
    tree: dict[str, Any] = {}
    for dotted, value in settings.items():
        *sections, key = dotted.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = str(value) if isinstance(value, Path) else value
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "smarttrader.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def published(config: Path) -> int:
    """Distinct signatures in the local log, or messages in the topic."""
    cfg = load_config(config).config
    if cfg.stream.backend == "kafka":
        from smarttrader_cli.stream.kafka_backend import kafka_end_offsets

        return sum(kafka_end_offsets(cfg.stream).values())
    from smarttrader_cli.stream.local_log import LocalConsumer

    consumer = LocalConsumer(cfg.stream)
    consumer.start(lambda parts: dict.fromkeys(parts, 0))
    keys: set[bytes] = set()
    while True:
        batch = consumer.poll(100_000, 1 << 30, 0.05)
        if not batch:
            break
        keys.update(m.key or b"" for m in batch)
    consumer.close()
    return len(keys)


def listener(port: int) -> psutil.Process | None:
    """The process listening on a local TCP port (the broker's JVM)."""
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return psutil.Process(conn.pid) if conn.pid else None
    return None


def cpu_seconds(proc: psutil.Process | None) -> float:
    return sum(proc.cpu_times()[:2]) if proc is not None else 0.0


def librdkafka_seconds(proc: psutil.Process) -> float:
    """CPU of the server's librdkafka threads (named rdk:...), as opposed to Python's."""
    total = 0.0
    for thread in proc.threads():
        try:
            name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith("rdk:"):
            total += thread.user_time + thread.system_time
    return total


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(
    backend: str,
    seconds: float,
    connections: int,
    workdir: Path,
    broker_fsync: bool = False,
    events: int = 1,
    warmup: float = 0,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    workdir.mkdir(parents=True)
    broker = None
    overrides: dict[str, Any] = {
        **(settings or {}),
        "stream.backend": backend,
        "webhook.port": free_port(),
    }
    if backend == "kafka":
        broker = KafkaBroker(workdir / "kafka", fsync_every_message=broker_fsync)
        broker.start()
        overrides["stream.bootstrap_servers"] = broker.bootstrap
    config = bench_config(workdir / backend, overrides)
    port = overrides["webhook.port"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.update(ST_CONFIG=str(config), ST_WEBHOOK_AUTH_TOKEN=TOKEN)
    server = subprocess.Popen([str(ST), "webhook", "serve"], env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/health").status_code == 200, 60, "server", server)
        # warm up (topic creation, connections) before measuring
        httpx.post(
            f"{url}/webhooks",
            content=payload_template().replace("SIGNATURE_PLACEHOLDER", "warm"),
            headers={"Authorization": TOKEN},
            timeout=30,
        )

        def load(duration: float, prefix: str) -> str:  # signatures unique per prefix
            script = workdir / f"{backend}-{prefix}.lua"
            script.write_text(LUA % (payload_template(events), prefix, TOKEN))
            return subprocess.run(
                [wrk_binary(), "-t1", f"-c{connections}", f"-d{max(1, int(duration))}s",
                 "--timeout", "10s", "-s", str(script), f"{url}/webhooks"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip

        warm_ok = 0
        if warmup > 0:  # a broker just started runs its first seconds unoptimized (JIT)
            warm = _wrk_result(load(warmup, "warm"))
            warm_ok = warm[0] - warm[1]
        load_before = round(os.getloadavg()[0], 2)
        proc = psutil.Process(server.pid)
        broker_proc = listener(broker.port) if broker is not None else None
        cpu_before = cpu_seconds(proc)
        rdkafka_before = librdkafka_seconds(proc)
        broker_before = cpu_seconds(broker_proc)
        wrk_before = children_seconds()
        started = time.monotonic()
        out = load(seconds, "bench")
        elapsed = time.monotonic() - started
        requests, non2xx, errors, p50, p99, mean = _wrk_result(out)
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        server_cpu = cpu_seconds(proc) - cpu_before
        rdkafka_cpu = librdkafka_seconds(proc) - rdkafka_before
        broker_cpu = cpu_seconds(broker_proc) - broker_before
        wrk_cpu = children_seconds() - wrk_before  # the only child reaped meanwhile
        status = httpx.get(f"{url}/webhooks/status").json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    ok = requests - non2xx
    stored = published(config) - 1  # minus the warm-up event
    ok_events = (ok + warm_ok) * events  # every 200, of the warm-up load too
    if broker is not None:
        broker.stop()
    return {
        "backend": "kafka-fsync" if backend == "kafka" and broker_fsync else backend,
        "load_avg_1m_before": load_before,
        "seconds": round(elapsed, 1),
        "connections": connections,
        "events_per_request": events,
        "requests": requests,
        "req_per_s": round(rps),
        "events_per_s": round(rps * events),
        "p50_ms": round(p50 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "mean_ms": round(mean / 1000, 2),
        "non_2xx": non2xx,
        "socket_errors": errors,
        "acked_200": ok,
        "warmup_acked_200": warm_ok,
        "in_stream": stored,
        "zero_loss": stored >= ok_events,
        "spooled": status.get("spooled"),
        # CPU the server process used per request: what one free core could sustain
        "server_cpu_us_per_req": round(server_cpu / max(1, requests) * 1e6),
        "one_core_capacity_req_per_s": round(requests / server_cpu) if server_cpu else None,
        # ...of which librdkafka's threads; then the broker's and wrk's: on a shared machine
        # their sum tells what two free cores could sustain better than req/s does
        "librdkafka_cpu_us_per_req": round(rdkafka_cpu / max(1, requests) * 1e6),
        "broker_cpu_us_per_req": round(broker_cpu / max(1, requests) * 1e6),
        "wrk_cpu_us_per_req": round(wrk_cpu / max(1, requests) * 1e6),
        "two_core_capacity_req_per_s": round(2 * requests / total)
        if (total := server_cpu + broker_cpu + wrk_cpu)
        else None,
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def _wrk_result(out: str) -> tuple[int, ...]:
    """requests, non-2xx, socket errors, p50, p99, mean (µs) from the script's RESULT line."""
    m = re.search(
        r"RESULT requests=(\d+) non2xx=(\d+) errors=(\d+) p50=(\d+) p99=(\d+) mean=(\d+)", out
    )
    assert m, out
    return tuple(map(int, m.groups()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "kafka", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--events", type=int, default=1, help="events per request")
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of load before each measured run"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config key for every server run (YAML value), e.g. "
        "stream.producer_max_in_flight=5; a baseline refuses keys it does not know",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend (median)")
    parser.add_argument(
        "--broker-fsync", action="store_true", help="Kafka broker fsyncs every message"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="source tree of an earlier version (git archive REV | tar -x -C DIR): each "
        "repetition runs its server first, then the current one, side by side",
    )
    args = parser.parse_args()
    wrk_binary()  # stops here, before any server starts, when wrk is missing
    backends = ["local", "kafka"] if args.backend == "both" else [args.backend]
    settings = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    # The current server imports this tree's package, not whatever `st` is installed from.
    versions: list[tuple[str, str | None]] = [("current", str(ROOT))]
    if args.baseline is not None:
        versions.insert(0, ("baseline", str(args.baseline.resolve())))
    rows = []
    with tempfile.TemporaryDirectory(prefix="st-bench-webhook-") as tmp:
        for backend in backends:
            runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in versions}
            for i in range(args.repeat):
                for label, source in versions:
                    os.environ.pop("PYTHONPATH", None)
                    if source:  # the server subprocess imports that tree's smarttrader_cli
                        os.environ["PYTHONPATH"] = source
                    work = Path(tmp) / f"{backend}-{label}-{i}"
                    run = run_one(
                        backend,
                        args.seconds,
                        args.connections,
                        work,
                        args.broker_fsync,
                        args.events,
                        args.warmup,
                        settings,
                    )
                    os.environ.pop("PYTHONPATH", None)
                    run["version"] = label
                    run["settings"] = args.set
                    runs[label].append(run)
                    print({k: run[k] for k in ("version", "backend", "req_per_s", "p99_ms")})
            for label, _ in versions:
                rows.append(_median(runs[label]))
    cols = [
        "backend",
        "req_per_s",
        "events_per_s",
        "p50_ms",
        "p99_ms",
        "non_2xx",
        "acked_200",
        "in_stream",
        "zero_loss",
        "server_cpu_us_per_req",
        "broker_cpu_us_per_req",
        "two_core_capacity_req_per_s",
        "load_avg_1m_before",
    ]
    if args.baseline is not None:
        cols.insert(0, "version")
    name = "webhook_ingest"
    name += "-broker-fsync" if args.broker_fsync else ""
    name += f"-{args.events}-events" if args.events > 1 else ""
    name += "-vs-baseline" if args.baseline is not None else ""
    name += "".join(f"-{key.rsplit('.', 1)[-1]}-{value}" for key, value in settings.items())
    write_results(RESULTS.with_name(f"{name}.json"), cols, rows)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s, with every run's numbers alongside."""
    runs = sorted(runs, key=lambda r: r["req_per_s"])
    median = dict(runs[len(runs) // 2])
    keep = ("req_per_s", "p50_ms", "p99_ms", "load_avg_1m_before", "two_core_capacity_req_per_s")
    median["runs"] = [{k: r.get(k) for k in keep} for r in runs]
    median["zero_loss"] = all(r["zero_loss"] for r in runs)
    return median


if __name__ == "__main__":
    main()
