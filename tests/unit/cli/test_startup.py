"""The CLI starts light and every command documents itself with an example."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "deltalake",
    "duckdb",
    "pyspark",
    "dbt",
    "confluent_kafka",
    "pyarrow",
    "pandas",
    "httpx",
    "uvicorn",
)


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from smarttrader_cli.cli.main import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"st --help imported: {out.stdout.strip()}"


def test_version_and_unknown_command_exit_codes() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "smarttrader_cli", "--version"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("st ")
    bad = subprocess.run(
        [sys.executable, "-m", "smarttrader_cli", "no-such-command"], capture_output=True, text=True
    )
    assert bad.returncode == 2
