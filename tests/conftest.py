"""Shared fixtures: real services on loopback and a per-test config.

Helpers (import with ``from tests.services import free_port, write_config``):

- ``free_port()`` → an unused TCP port on 127.0.0.1.
- ``write_config(dir, {"lake.root": ...}, stream__backend="kafka")`` → path of a full config
  file (defaults + lake/state/log/spool/stream dirs inside ``dir`` + overrides by dotted key;
  ``__`` also separates). Unknown keys raise KeyError.

Fixtures:

- ``st_env`` (function) → env dict (``os.environ`` + ``ST_CONFIG`` at a config written by
  ``write_config(tmp_path)``) for running ``st`` in a subprocess; ``st_config`` is its path.
- ``kafka_broker`` (session) → ``KafkaBroker``: ``.bootstrap`` ("127.0.0.1:PORT"), ``.stop()``,
  ``.start()`` (same port and data), ``.kill()``, ``.running``. Single-node KRaft Apache Kafka.
  A test that stops it must start it again; ``own_kafka_broker`` (function) gives a private one.
- ``minio_server`` / ``s3_server`` (session) → ``S3Server``: ``.endpoint`` ("http://127.0.0.1:P"),
  ``.host_port``, ``.access_key``, ``.secret_key``, ``.bucket`` ("smart-trader", created),
  ``.region``, ``.storage_options()`` (deltalake), ``.env()`` (AWS_* vars), ``.client()``
  (minio client), ``.stop()/.start()/.kill()``. The server is versitygw (S3-compatible, with
  conditional writes): the Go proxy refuses MinIO server modules here.
- ``spark_standalone`` (session) → ``"spark://127.0.0.1:PORT"``: a master and one worker
  (1 core, 1 GiB); ``spark_cluster`` gives the ``SparkStandalone`` object.

Binaries and jars come from the project cache (``scripts/install-deps.sh``). A missing one
FAILS the test with that hint, unless ``ST_TESTS_ALLOW_MISSING=1``, where it skips.
Tests under ``tests/integration`` and ``tests/e2e`` get their marker automatically.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import (
    KafkaBroker,
    MissingDependency,
    S3Server,
    SparkStandalone,
    free_port,
    write_config,
)

__all__ = ["free_port", "write_config"]

_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder so ``-m "not integration"`` works even when a marker is forgotten."""
    for item in items:
        path = Path(str(item.fspath))
        if _ROOT not in path.parents:
            continue
        folder = path.relative_to(_ROOT).parts[0]
        if folder == "integration":
            item.add_marker(pytest.mark.integration)
        elif folder == "e2e":
            item.add_marker(pytest.mark.e2e)


def _missing(exc: MissingDependency) -> Any:
    if os.environ.get("ST_TESTS_ALLOW_MISSING") == "1":
        pytest.skip(str(exc))
    pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def st_config(tmp_path: Path) -> Path:
    """A config file whose lake, state, logs, spool and stream dirs live in tmp_path."""
    return write_config(tmp_path)


@pytest.fixture
def st_env(st_config: Path) -> dict[str, str]:
    """Environment for a ``st`` subprocess using ``st_config``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_") or k == "ST_CACHE_DIR"}
    env["ST_CONFIG"] = str(st_config)
    return env


def _broker(workdir: Path) -> Iterator[KafkaBroker]:
    try:
        broker = KafkaBroker(workdir)
    except MissingDependency as exc:
        _missing(exc)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A single-node KRaft Kafka broker shared by the session."""
    yield from _broker(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def own_kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A private broker for tests that crash or reconfigure it."""
    yield from _broker(tmp_path / "kafka")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server with the ``smart-trader`` bucket, shared by the session."""
    try:
        server = S3Server(tmp_path_factory.mktemp("s3"))
    except MissingDependency as exc:
        _missing(exc)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def minio_server(s3_server: S3Server) -> S3Server:
    """Alias of ``s3_server`` (the name the issues use)."""
    return s3_server


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    """A Spark standalone master with one registered worker."""
    try:
        cluster = SparkStandalone(tmp_path_factory.mktemp("spark"))
    except MissingDependency as exc:
        _missing(exc)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def spark_standalone(spark_cluster: SparkStandalone) -> str:
    """The master URL ``spark://127.0.0.1:PORT`` of ``spark_cluster``."""
    return spark_cluster.url
