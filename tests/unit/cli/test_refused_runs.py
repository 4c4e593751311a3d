"""A stage command refused because the stage is running exits 75 before its heavy imports:
cron's overlapping ticks on a busy host each cost a config load, not a full start."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

from smarttrader_cli.ops.locks import lock_path
from tests.harness import write_config

COMMANDS = {
    "bronze.tokens": ["bronze", "tokens"],
    "bronze.whales": ["bronze", "whales"],
    "bronze.trades": ["bronze", "trades"],
    "bronze.prices": ["bronze", "prices"],
    "silver.webhooks": ["silver", "webhooks"],
    "silver.pnl": ["silver", "pnl"],
    "gold.rank": ["gold", "rank"],
    "gold.flows": ["gold", "flows"],
    "helius.sync": ["helius", "sync"],
    "stream.drain": ["stream", "drain"],
    "follow": ["follow"],
    "ops.cleanup": ["ops", "cleanup"],
    "ops.compact": ["ops", "compact"],
}
HEAVY = ("deltalake", "duckdb", "pyarrow", "pyspark", "dbt", "confluent_kafka", "httpx")

# Runs each `st ARGS...` on stdin as the console script does; prints the exit codes and the
# heavy modules loaded by any of them.
PROBE = """
import json, sys
from smarttrader_cli.cli.main import run
codes = {}
for args in json.load(sys.stdin):
    sys.argv = ["st", *args]
    try:
        run()
    except SystemExit as exit:
        codes[" ".join(args)] = exit.code
print(json.dumps({"codes": codes, "heavy": sorted(
    m for m in sys.modules if m.split(".")[0] in HEAVY)}))
"""


def test_every_stage_command_is_refused_early_while_its_stage_runs(tmp_path: Path) -> None:
    from smarttrader_cli.pipeline import STAGE_NAMES

    assert set(STAGE_NAMES) <= set(COMMANDS)
    config = write_config(tmp_path)
    held = []
    for stage in COMMANDS:
        path = lock_path(tmp_path / "state", stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.append(fd)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
        env["ST_CONFIG"] = str(config)
        out = subprocess.run(
            [sys.executable, "-c", PROBE.replace("in HEAVY", f"in {HEAVY!r}")],
            input=json.dumps(list(COMMANDS.values())),
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        for fd in held:
            os.close(fd)
    assert out.returncode == 0, out.stderr[-2000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["codes"] == {" ".join(args): 75 for args in COMMANDS.values()}
    assert probe["heavy"] == []
    assert out.stderr.count("is already running") == len(COMMANDS)
