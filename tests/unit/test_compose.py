"""The compose stack, checked without a Docker engine: shape, files, env names, ports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from smarttrader_cli.config import load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose" / "docker-compose.yaml"
DOCKERFILE = ROOT / "compose" / "Dockerfile"
TEST_ENV = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([?-])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style ${VAR}, ${VAR:-default}, ${VAR:?error} substitution."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, kind, arg = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return _VAR.sub(sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the <<: merge keys


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: interpolate(svc, TEST_ENV) for name, svc in compose["services"].items()}


def st_services(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in services.items() if s.get("image", "").startswith("smarttrader/st")}


def test_services_present(services: dict[str, Any]) -> None:
    assert set(services) >= {
        "redpanda",
        "redpanda-console",
        "minio",
        "minio-init",
        "spark-master",
        "spark-worker",
        "webhook",
        "scheduler",
    }
    assert set(st_services(services)) == {
        "spark-master", "spark-worker", "webhook", "scheduler", "follow"
    }  # fmt: skip


def test_follow_is_opt_in_and_serves_health_on_loopback(services: dict[str, Any]) -> None:
    follow = services["follow"]
    assert follow["profiles"] == ["follow"]  # beside the cron drain only when asked for
    assert follow["command"][-1] == "follow"
    env = follow["environment"]
    assert env["ST_FOLLOW__HOST"] == "0.0.0.0"
    port = str(env["ST_FOLLOW__PORT"])
    assert follow["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"127.0.0.1:{port}/health" in " ".join(follow["healthcheck"]["test"])


def test_st_services_build_from_the_dockerfile(services: dict[str, Any]) -> None:
    for name, svc in st_services(services).items():
        build = svc["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_mounted_and_copied_files_exist(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).resolve().exists(), f"{name}: {source}"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_bakes_java_spark_jars_and_supercronic() -> None:
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim" in text
    assert "openjdk-17-jre-headless" in text
    assert '".[spark]"' in text
    assert "scripts/install-deps.sh" in text
    assert "cache/jars" in text and "bin/supercronic" in text


def test_scheduler_runs_the_project_crontab(services: dict[str, Any]) -> None:
    scheduler = services["scheduler"]
    assert scheduler["command"][0] == "supercronic"
    crontab = scheduler["command"][-1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in scheduler["volumes"]}
    assert (COMPOSE.parent / mounts[crontab]).resolve() == ROOT / "crontab" / "smarttrader.crontab"
    assert scheduler["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_st_env_names_are_real_config_keys(services: dict[str, Any]) -> None:
    for name, svc in st_services(services).items():
        env = {k: str(v) for k, v in svc["environment"].items()}
        overrides = {k for k in env if k.startswith("ST_") and "__" in k}
        assert overrides, name
        loaded = load_config(None, env=env, search=False)  # unknown keys raise ConfigError
        for var in overrides:  # each lands on the key its name spells, with its value
            dotted, value = _key_of(loaded.config, var)
            assert loaded.sources.get(dotted) == f"env {var}", var
            assert str(value).lower() == env[var].lower(), var
        config = loaded.config
        assert config.lake.root == "s3://smart-trader/lake"
        assert config.stream.backend == "kafka"
        assert loaded.secrets.aws_access_key_id == "key"


def _key_of(config: Any, var: str) -> tuple[str, Any]:
    """The dotted key ST_SECTION__KEY names (map keys keep their case) and its value."""
    names, node = [], config
    for part in var.removeprefix("ST_").split("__"):
        if isinstance(node, dict):
            name, node = part, node[part]
        else:
            name, node = part.lower(), getattr(node, part.lower())
        names.append(name)
    return ".".join(names), node


def test_ports_and_hosts_agree(services: dict[str, Any]) -> None:
    env = services["scheduler"]["environment"]
    loaded = load_config(None, env={k: str(v) for k, v in env.items()}, search=False)
    config = loaded.config

    kafka_host, kafka_port = config.stream.bootstrap_servers.split(":")
    redpanda = " ".join(services["redpanda"]["command"])
    assert f"internal://{kafka_host}:{kafka_port}" in redpanda
    assert f"internal://0.0.0.0:{kafka_port}" in redpanda
    assert services["redpanda-console"]["environment"]["KAFKA_BROKERS"] == (
        config.stream.bootstrap_servers
    )

    endpoint = config.lake.storage_options["AWS_ENDPOINT_URL"]
    host, port = endpoint.removeprefix("http://").split(":")
    assert host in services and "--address" in services["minio"]["command"]
    assert services["minio"]["command"][services["minio"]["command"].index("--address") + 1] == (
        f":{port}"
    )
    assert services["minio-init"]["environment"]["S3_ENDPOINT"] == endpoint
    bucket = config.lake.root.removeprefix("s3://").split("/")[0]
    assert services["minio-init"]["environment"]["S3_BUCKET"] == bucket

    master = config.spark.master.removeprefix("spark://")
    master_host, master_port = master.split(":")
    assert master_host in services
    assert (
        services["spark-master"]["command"][services["spark-master"]["command"].index("--port") + 1]
        == master_port
    )
    assert config.spark.master in services["spark-worker"]["command"]

    webhook = services["webhook"]
    port = str(webhook["environment"]["ST_WEBHOOK__PORT"])
    assert webhook["environment"]["ST_WEBHOOK__HOST"] == "0.0.0.0"  # inside its container
    assert webhook["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_every_published_port_is_on_loopback_only(services: dict[str, Any]) -> None:
    # Docker's 0.0.0.0 ports skip the host firewall; what faces the internet (the webhook
    # receiver) goes through a TLS reverse proxy on the host instead.
    for name, svc in services.items():
        for mapping in svc.get("ports", []):
            host_ip, host_port, container_port = str(mapping).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {mapping}"
            assert host_port.isdigit() and container_port.isdigit(), f"{name}: {mapping}"


def test_host_ports_are_unique(services: dict[str, Any]) -> None:
    published = [p.rsplit(":", 1)[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


def test_required_secrets_fail_loudly_when_unset(compose: dict[str, Any]) -> None:
    with pytest.raises(KeyError, match="AWS_ACCESS_KEY_ID"):
        interpolate(compose["services"]["minio"], {})


def test_docker_compose_config_when_available() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    proc = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **TEST_ENV},
    )
    assert proc.returncode == 0, proc.stderr
