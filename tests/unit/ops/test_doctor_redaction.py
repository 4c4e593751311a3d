"""`st doctor` never prints a secret: not from storage_options, the environment, or an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smarttrader_cli.ops import doctor
from smarttrader_cli.ops.doctor import FAIL, CheckResult, run_checks
from tests.harness import write_config

SECRET = "doctor-secret-value"
TOKEN = "doctor-session-token"


def config(tmp_path: Path, **storage_options: Any) -> Path:
    options = {"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN, **storage_options}
    return write_config(tmp_path, lake__storage_options=options)


def test_an_invalid_config_is_reported_without_its_secrets(tmp_path: Path) -> None:
    results = run_checks(config(tmp_path, AWS_REGION=["a"]), env={})
    assert results[0].check == "config" and results[0].status == FAIL
    assert "storage_options must be a mapping" in results[0].detail
    assert SECRET not in results[0].detail and TOKEN not in results[0].detail


def test_check_details_and_errors_are_redacted(tmp_path: Path, monkeypatch) -> None:
    def leaky(loaded: object) -> CheckResult:
        return CheckResult("leaky", "ok", f"connected with {SECRET}")

    def raising(loaded: object) -> CheckResult:
        raise RuntimeError(f"auth failed for token {TOKEN} and key env-api-key")

    monkeypatch.setattr(doctor, "CHECKS", [("leaky", leaky), ("raising", raising)])
    results = run_checks(config(tmp_path), env={"BIRDEYE_API_KEY": "env-api-key"})
    text = " ".join(r.detail for r in results)
    assert "connected with ***redacted***" in text
    assert "auth failed for token ***redacted*** and key ***redacted***" in text
    for secret in (SECRET, TOKEN, "env-api-key"):
        assert secret not in text


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_cli_doctor_prints_no_secret(tmp_path: Path, fmt: str) -> None:
    from typer.testing import CliRunner

    from smarttrader_cli.cli.main import app

    path = config(tmp_path)
    result = CliRunner().invoke(app, ["--config", str(path), "doctor", "-f", fmt], env={})
    assert SECRET not in result.output and TOKEN not in result.output
