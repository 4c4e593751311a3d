"""Shared fixtures: real services on loopback, a per-test config and an AppContext on it.

Helpers live in ``tests.harness`` (``from tests.harness import free_port, write_config``):

- ``free_port()`` → an unused TCP port on 127.0.0.1.
- ``write_config(dir, {"lake.root": ...}, stream__backend="kafka")`` → path of a full config
  file (defaults + lake/state/log/spool/stream dirs inside ``dir`` + overrides by dotted key;
  ``__`` also separates). Unknown keys raise KeyError.

Fixtures:

- ``st_config(**overrides)`` (function) → a factory: ``write_config(tmp_path, **overrides)``,
  the path of ``tmp_path/smarttrader.yaml`` (each call rewrites it).
- ``app_ctx`` (function) → ``AppContext`` on ``st_config(**config_overrides)`` with no ``ST_*``
  variable inherited from the caller; a module overrides ``config_overrides`` (a dict of dotted
  keys, empty by default) to change its config.
- ``kafka_broker`` (session) → ``KafkaBroker``: ``.bootstrap`` ("127.0.0.1:PORT"), ``.stop()``,
  ``.start()`` (same port and data), ``.kill()``, ``.running``. Single-node KRaft Apache Kafka.
  A test that stops it must start it again; ``own_kafka_broker`` (function) gives a private one.
- ``s3_server`` (session) → ``S3Server``: ``.endpoint`` ("http://127.0.0.1:P"), ``.host_port``,
  ``.access_key``, ``.secret_key``, ``.bucket`` ("smart-trader", created), ``.region``,
  ``.storage_options()`` (deltalake), ``.env()`` (AWS_* vars), ``.client()`` (minio client),
  ``.stop()/.start()/.kill()``. The server is versitygw (S3-compatible, with conditional
  writes): the Go proxy refuses MinIO server modules here.
- ``spark_standalone`` (session) → ``"spark://127.0.0.1:PORT"``: a master and one worker
  (1 core, 1 GiB); ``spark_cluster`` gives the ``SparkStandalone`` object.

Binaries and jars come from the project cache (``scripts/install-deps.sh``). A missing one
FAILS the test with that hint, unless ``ST_TESTS_ALLOW_MISSING=1``, where it skips.
Tests under ``tests/integration`` and ``tests/e2e`` get their marker automatically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings

from smarttrader_cli.context import AppContext
from tests.harness import (
    KafkaBroker,
    MissingDependency,
    S3Server,
    SparkStandalone,
    missing,
    write_config,
)

_ROOT = Path(__file__).parent

# No per-example time limit: Hypothesis' 200 ms deadline is a wall-clock assertion, and on a
# shared 2-core machine under load an example of test_stream_body took 302 ms and failed.
settings.register_profile("st", deadline=None)
settings.load_profile("st")
_S = TypeVar("_S", KafkaBroker, S3Server, SparkStandalone)


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


@pytest.fixture
def st_config(tmp_path: Path) -> Callable[..., Path]:
    """``st_config(**overrides)`` writes ``tmp_path/smarttrader.yaml`` and returns its path."""

    def write(**overrides: Any) -> Path:
        return write_config(tmp_path, **overrides)

    return write


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Dotted config keys for ``app_ctx``; a module overrides this fixture to set some."""
    return {}


@pytest.fixture
def app_ctx(
    st_config: Callable[..., Path],
    config_overrides: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> AppContext:
    """An AppContext on a config under tmp_path, blind to the caller's ``ST_*`` variables."""
    for var in [v for v in os.environ if v.startswith("ST_")]:
        monkeypatch.delenv(var)
    return AppContext(config_path=st_config(**config_overrides))


def _service_fixture(make: Callable[[Path], _S], workdir: Path) -> Iterator[_S]:
    """Build a service in ``workdir``, start it, yield it and stop it afterwards.

    A missing binary or jar fails the test with the install hint, or skips it when
    ``ST_TESTS_ALLOW_MISSING=1``.
    """
    try:
        service = make(workdir)
    except MissingDependency as exc:
        missing(str(exc))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A single-node KRaft Kafka broker shared by the session."""
    yield from _service_fixture(KafkaBroker, tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def own_kafka_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    """A private broker for tests that crash or reconfigure it."""
    yield from _service_fixture(KafkaBroker, tmp_path / "kafka")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server with the ``smart-trader`` bucket, shared by the session."""
    yield from _service_fixture(S3Server, tmp_path_factory.mktemp("s3"))


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    """A Spark standalone master with one registered worker."""
    yield from _service_fixture(SparkStandalone, tmp_path_factory.mktemp("spark"))


@pytest.fixture(scope="session")
def spark_standalone(spark_cluster: SparkStandalone) -> str:
    """The master URL ``spark://127.0.0.1:PORT`` of ``spark_cluster``."""
    return spark_cluster.url
