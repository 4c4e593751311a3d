"""`st doctor`: each check against real directories, a closed port, a real JVM lookup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.ops import doctor
from smarttrader_cli.ops.doctor import FAIL, OK, SKIP, WARN, run_checks
from tests.harness import free_port, write_config

SIM = "http://127.0.0.1:8765"


def by_name(results: list[doctor.CheckResult]) -> dict[str, doctor.CheckResult]:
    return {r.check: r for r in results}


def healthy_config(tmp_path: Path, **dotted: object) -> Path:
    return write_config(tmp_path, {"birdeye.base_url": SIM, "helius.api_base_url": SIM, **dotted})


def test_healthy_local_setup_passes(tmp_path: Path) -> None:
    results = by_name(run_checks(healthy_config(tmp_path), env={}))
    assert results["config"].status == OK
    assert results["lake"].status == OK and "can be created" in results["lake"].detail
    assert results["broker"].status == OK and "local log" in results["broker"].detail
    assert results["birdeye key"].status == WARN  # loopback simulator: a warning, not a failure
    assert results["java"].status == SKIP and results["spark jars"].status == SKIP
    assert results["duckdb"].status == OK
    assert not doctor.failed(list(results.values()))


def test_cli_json_and_exit_code_zero(tmp_path: Path) -> None:
    config = healthy_config(tmp_path)
    result = CliRunner().invoke(
        app, ["--config", str(config), "doctor", "--format", "json"], env={}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["check"] for r in rows} >= {"config", "lake", "broker", "disk", "memory"}
    assert all(set(r) == {"check", "status", "detail"} for r in rows)


def test_missing_key_for_real_api_fails_with_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"birdeye.base_url": "https://public-api.birdeye.so"})
    result = CliRunner().invoke(
        app, ["--config", str(config), "doctor", "-f", "json"], env={}, catch_exceptions=False
    )
    assert result.exit_code == 1
    rows = {r["check"]: r for r in json.loads(result.stdout)}
    assert rows["birdeye key"]["status"] == FAIL
    assert "BIRDEYE_API_KEY" in rows["birdeye key"]["detail"]


def test_keys_present_are_ok(tmp_path: Path) -> None:
    env = {"BIRDEYE_API_KEY": "k", "HELIUS_API_KEY": "h", "ST_WEBHOOK_AUTH_TOKEN": "t"}
    results = by_name(run_checks(write_config(tmp_path), env=env))
    assert results["birdeye key"].status == OK
    assert results["helius key"].status == OK
    assert results["webhook token"].status == OK


def test_public_webhook_without_token_fails(tmp_path: Path) -> None:
    results = by_name(run_checks(healthy_config(tmp_path, **{"webhook.host": "0.0.0.0"}), env={}))
    assert results["webhook token"].status == FAIL


def test_invalid_config_fails_and_skips_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("lake:\n  rooot: /tmp/x\n")
    results = run_checks(bad, env={})
    assert results[0].check == "config" and results[0].status == FAIL
    assert "rooot" in results[0].detail and "bad.yaml:2" in results[0].detail
    assert {r.status for r in results[1:]} == {SKIP}


def test_lake_root_that_is_a_file_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    results = by_name(run_checks(healthy_config(tmp_path, **{"lake.root": str(blocker)}), env={}))
    assert results["lake"].status == FAIL
    assert "not a directory" in results["lake"].detail


def test_unreachable_kafka_fails(tmp_path: Path) -> None:
    config = healthy_config(
        tmp_path,
        **{"stream.backend": "kafka", "stream.bootstrap_servers": f"127.0.0.1:{free_port()}"},
    )
    results = by_name(run_checks(config, env={}))
    assert results["broker"].status == FAIL
    assert "kafka 127.0.0.1:" in results["broker"].detail


def test_s3_lake_without_credentials_fails(tmp_path: Path) -> None:
    config = healthy_config(tmp_path, **{"lake.root": "s3://smart-trader/lake"})
    results = by_name(run_checks(config, env={}))
    assert results["lake"].status == FAIL
    assert "AWS_ACCESS_KEY_ID" in results["lake"].detail


def test_s3_lake_unreachable_endpoint_fails(tmp_path: Path) -> None:
    config = healthy_config(
        tmp_path,
        **{
            "lake.root": "s3://smart-trader/lake",
            "lake.storage_options": {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"},
        },
    )
    env = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    results = by_name(run_checks(config, env=env))
    assert results["lake"].status == FAIL
    assert "s3://smart-trader/lake" in results["lake"].detail


def test_spark_engine_needs_java_and_jars(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    config = healthy_config(tmp_path, **{"engine": "spark", "spark.jar_cache": str(jars)})
    results = by_name(run_checks(config, env={}))
    assert results["java"].status == OK  # Java 17 is installed on the CI machines
    assert results["spark jars"].status == FAIL
    assert "delta-spark" in results["spark jars"].detail
    for name in ("delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (jars / name).write_bytes(b"")
    assert by_name(run_checks(config, env={}))["spark jars"].status == OK


def test_spark_on_s3_needs_hadoop_aws(tmp_path: Path) -> None:
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (jars / name).write_bytes(b"")
    config = healthy_config(
        tmp_path,
        **{"engine": "spark", "spark.jar_cache": str(jars), "lake.root": "s3://b/lake"},
    )
    result = by_name(run_checks(config, env={}))["spark jars"]
    assert result.status == FAIL and "hadoop-aws" in result.detail


def test_java_missing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    config = healthy_config(tmp_path, **{"engine": "spark"})
    result = by_name(run_checks(config, env={}))["java"]
    assert result.status == FAIL and "java not on PATH" in result.detail


def test_memory_floor_names_free_and_needed(tmp_path: Path) -> None:
    config = healthy_config(tmp_path, **{"memory.min_free_mb": 10_000_000})
    result = by_name(run_checks(config, env={}))["memory"]
    assert result.status == FAIL
    assert "needs at least 10000000 MB" in result.detail and "MB of memory free" in result.detail


def test_disk_thresholds_warn_then_fail(tmp_path: Path) -> None:
    warn = healthy_config(tmp_path / "w", **{"ops.disk_warning_percent": 0.0})
    assert by_name(run_checks(warn, env={}))["disk"].status == WARN
    crit = healthy_config(
        tmp_path / "c", **{"ops.disk_warning_percent": 0.0, "ops.disk_critical_percent": 0.0}
    )
    result = by_name(run_checks(crit, env={}))["disk"]
    assert result.status == FAIL and "critical" in result.detail
