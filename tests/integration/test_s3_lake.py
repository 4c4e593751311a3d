"""The lake on a real S3 server: the batch pipeline and the stream drain, concurrent writers,
and the faults an operator meets (server down at stage start, wrong credentials, no bucket).

`st` runs as a user runs it (a subprocess with `lake.root: s3://…`, the endpoint in
`lake.storage_options` and the credentials in AWS_*); each test uses its own prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from smarttrader_cli.docs_gen import command_paths
from smarttrader_cli.lake.store import CommitMeta, Lake
from smarttrader_cli.lake.tables import table_spec
from smarttrader_cli.sim.market import SimSettings
from smarttrader_cli.sim.server import RunningSim, run_in_thread
from tests.harness import S3Server, write_config
from tests.stream_support import helius_events, outbound, produce

pytestmark = pytest.mark.integration

END = int(time.time()) // 3600 * 3600 - 3600
BATCH = [
    ["bronze", "tokens"],
    ["bronze", "whales"],
    ["bronze", "trades"],
    ["silver", "pnl"],
    ["gold", "rank"],
]
ST = str(Path(sys.executable).parent / "st")
STREAM = [["stream", "drain"], ["silver", "webhooks"], ["gold", "flows"]]
DEPENDS = {"gold rank": "silver pnl", "gold flows": "silver webhooks"}


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with run_in_thread(SimSettings(seed=9, wallets=24, tokens=6, trades=1500, end_time=END)) as s:
        yield s


def s3_root(server: S3Server, bucket: str | None = None) -> str:
    return f"s3://{bucket or server.bucket}/{uuid.uuid4().hex[:10]}/lake"


def config_for(directory: Path, sim: RunningSim, root: str, endpoint: str, **extra: Any) -> Path:
    return write_config(
        directory,
        {
            "lake.root": root,
            "lake.storage_options": {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            },
            "birdeye.base_url": sim.base_url,
            "birdeye.rate_limit_rps": 500.0,
            "helius.api_base_url": sim.base_url,
            "tokens.limit": 6,
            "memory.min_free_mb": 64,
            "stream.max_latency_seconds": 0.5,
            **extra,
        },
    )


def st_env(config: Path, server: S3Server, **override: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ST_", "AWS_"))}
    if "ST_CACHE_DIR" in os.environ:
        env["ST_CACHE_DIR"] = os.environ["ST_CACHE_DIR"]
    env.update(
        ST_CONFIG=str(config),
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
    )
    env.update(override)
    return env


def st(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ST, "--log-format", "json", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def objects(server: S3Server, root: str) -> list[str]:
    bucket, prefix = root.removeprefix("s3://").split("/", 1)
    return [o.object_name for o in server.client().list_objects(bucket, prefix, recursive=True)]


def lake_for(server: S3Server, root: str) -> Lake:
    return Lake(root, server.storage_options())


def test_pipeline_and_drain_on_s3_match_a_local_lake(
    tmp_path: Path, s3_server: S3Server, sim: RunningSim
) -> None:
    root = s3_root(s3_server)
    config = config_for(tmp_path / "s3", sim, root, s3_server.endpoint)
    env = st_env(config, s3_server)
    local_config = write_config(
        tmp_path / "local",
        {"birdeye.base_url": sim.base_url, "tokens.limit": 6, "memory.min_free_mb": 64},
    )
    local_env = {**env, "ST_CONFIG": str(local_config)}
    produce(config, outbound(helius_events(300, seed=3)))
    leaves = {" ".join(path) for path, leaf in command_paths() if leaf}
    missing = {" ".join(c) for c in BATCH + STREAM} - leaves
    for _ in DEPENDS:
        missing |= {cmd for cmd, needs in DEPENDS.items() if needs in missing}
    if missing:
        warnings.warn(
            f"S3 pipeline test leaves out stages st lacks: {sorted(missing)}", stacklevel=1
        )
    batch = [c for c in BATCH if " ".join(c) not in missing]
    stream = [c for c in STREAM if " ".join(c) not in missing]

    for command in batch + stream:
        for which, run_env in (("s3", env), ("local", local_env)):
            if which == "local" and command in stream:
                continue
            proc = st(run_env, *command)
            assert proc.returncode == 0, f"{which} st {' '.join(command)}:\n{proc.stderr[-3000:]}"

    keys = objects(s3_server, root)
    written = ["bronze/wallet_trades", "bronze/webhook_events", "ops/runs"]
    written += ["silver/wallet_pnl", "gold/smart_wallets"] if ["gold", "rank"] in batch else []
    for table in written:
        assert any(f"/{table}/_delta_log/" in k for k in keys), f"{table} not on S3"
    assert not (tmp_path / "s3" / "lake").exists()  # nothing fell back to a local path

    # DuckDB reads the S3 tables through the secret built from the same config.
    query = "SELECT count(*) AS n, count(DISTINCT signature) AS d FROM bronze.webhook_events"
    proc = st(env, "lake", "query", query, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"n": 300, "d": 300}]

    # Same input, same result, whichever storage holds the lake.
    if ["gold", "rank"] in batch:
        ranking = "SELECT wallet_address, tier FROM gold.smart_wallets ORDER BY 1"
    else:
        ranking = (
            "SELECT wallet_address, tx_hash, ins_index, inner_ins_index "
            "FROM bronze.wallet_trades ORDER BY ALL"
        )
    on_s3 = st(env, "lake", "query", ranking, "--format", "json")
    on_disk = st(local_env, "lake", "query", ranking, "--format", "json")
    assert on_s3.returncode == 0 and on_disk.returncode == 0, on_s3.stderr + on_disk.stderr
    assert json.loads(on_s3.stdout) == json.loads(on_disk.stdout)
    assert json.loads(on_s3.stdout), "the simulator's market should give rows"

    runs = lake_for(s3_server, root).read(table_spec("ops.runs")).to_pylist()
    assert {r["status"] for r in runs} == {"succeeded"}
    assert {".".join(c) for c in batch + stream} <= {r["stage"] for r in runs}

    doctor = st(env, "doctor", "--format", "json")
    lake_check = next(r for r in json.loads(doctor.stdout) if r["check"] == "lake")
    assert lake_check["status"] == "ok", lake_check


def test_concurrent_merges_into_one_table_both_land(s3_server: S3Server) -> None:
    lake = lake_for(s3_server, s3_root(s3_server))
    spec = table_spec("bronze.token_metrics")
    lake.ensure_table(spec)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for round_ in range(5):
                rows = pa.table(
                    {
                        "token_address": [f"{name}-{round_}-{i}" for i in range(20)],
                        "snapshot_at": [1_700_000_000 + round_] * 20,
                    }
                )
                barrier.wait(timeout=60)  # both merge the same version at once
                lake.merge(spec, rows, CommitMeta(f"run-{name}-{round_}", "test.concurrent", "c"))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    table = lake.read(spec)
    assert table.num_rows == 2 * 5 * 20
    assert len(set(table.column("token_address").to_pylist())) == 200
    commits = [h for h in lake.history(spec) if h.get("operation") == "MERGE"]
    assert len(commits) == 10  # every merge is its own commit; none was lost or merged away


def test_two_drains_at_once_write_each_event_once(
    tmp_path: Path, s3_server: S3Server, sim: RunningSim
) -> None:
    """Two drain processes on "two hosts" (separate lock dirs) race on one table."""
    root = s3_root(s3_server)
    first = config_for(tmp_path / "a", sim, root, s3_server.endpoint, **{"stream.batch_size": 50})
    second = config_for(
        tmp_path / "b",
        sim,
        root,
        s3_server.endpoint,
        **{"stream.batch_size": 50, "stream.local_dir": str(tmp_path / "a" / "stream")},
    )
    produce(first, outbound(helius_events(600, seed=4)))
    procs = [
        subprocess.Popen(
            [ST, "--log-format", "json", "stream", "drain", "--max-seconds", "120"],
            env=st_env(config, s3_server),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for config in (first, second)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    events = lake_for(s3_server, root).read(table_spec("bronze.webhook_events"))
    signatures = events.column("signature").to_pylist()
    assert len(signatures) == 600
    assert len(set(signatures)) == 600


def test_server_down_at_stage_start_is_one_line_and_writes_nothing(
    tmp_path: Path, s3_server: S3Server, sim: RunningSim
) -> None:
    root = s3_root(s3_server)
    config = config_for(tmp_path, sim, root, s3_server.endpoint)
    env = st_env(config, s3_server)
    s3_server.stop()
    try:
        proc = st(env, "bronze", "tokens", timeout=600)
    finally:
        s3_server.start()
    assert proc.returncode == 1
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("st: error:")]
    assert len(error_lines) == 1, proc.stderr
    assert "connection refused" in error_lines[0] and root in error_lines[0]
    assert "Traceback" not in proc.stderr
    assert objects(s3_server, root) == []  # not even a ledger row

    # The server is back: the same command now succeeds.
    again = st(env, "bronze", "tokens")
    assert again.returncode == 0, again.stderr[-2000:]
    assert lake_for(s3_server, root).read(table_spec("bronze.token_metrics")).num_rows > 0


def test_wrong_credentials_are_named(tmp_path: Path, s3_server: S3Server, sim: RunningSim) -> None:
    root = s3_root(s3_server)
    config = config_for(tmp_path, sim, root, s3_server.endpoint)
    env = st_env(config, s3_server, AWS_SECRET_ACCESS_KEY="not-the-secret")
    proc = st(env, "bronze", "tokens")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("st: error:") and "403" in last and "AWS_SECRET_ACCESS_KEY" in last
    assert objects(s3_server, root) == []

    doctor = st(env, "doctor", "--format", "json")
    assert doctor.returncode == 1
    lake_check = next(r for r in json.loads(doctor.stdout) if r["check"] == "lake")
    assert lake_check["status"] == "fail"


def test_missing_bucket_is_named(tmp_path: Path, s3_server: S3Server, sim: RunningSim) -> None:
    root = s3_root(s3_server, bucket="no-such-bucket")
    config = config_for(tmp_path, sim, root, s3_server.endpoint)
    env = st_env(config, s3_server)
    proc = st(env, "bronze", "tokens")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "NoSuchBucket" in last and "does not exist" in last
    assert not s3_server.client().bucket_exists("no-such-bucket")

    doctor = st(env, "doctor", "--format", "json")
    lake_check = next(r for r in json.loads(doctor.stdout) if r["check"] == "lake")
    assert lake_check["status"] == "fail"
    assert "bucket 'no-such-bucket' does not exist" in lake_check["detail"]
