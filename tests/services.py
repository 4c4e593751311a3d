"""Real services for integration tests: a KRaft Kafka broker, an S3 server, a Spark cluster.

Each runs from the project cache filled by ``scripts/install-deps.sh`` (see
``smarttrader_cli.ops.cache``), listens on loopback only, keeps its data in a temporary
directory and can be stopped and started again on the same port with the same data.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from smarttrader_cli.config import defaults_text
from smarttrader_cli.ops.cache import bin_dir, cache_dir, kafka_dir

INSTALL_HINT = "run `bash scripts/install-deps.sh` to fill the cache"
_RUNNING: set[subprocess.Popen[bytes]] = set()


class MissingDependency(RuntimeError):
    """A binary or jar the service needs is not in the project cache."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: Any = None) -> None:
    """Poll ``check`` until it is true; raise naming ``what`` on timeout or when ``proc`` died."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with code {proc.returncode}")
        try:
            if check():
                return
        except Exception as exc:  # the service is still starting
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s (last error: {last})")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _Process:
    """One child process in its own process group, logging to a file."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        _RUNNING.add(self.proc)
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int, wait: float) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        _RUNNING.discard(proc)
        self.proc = None

    def failure(self, exc: BaseException) -> RuntimeError:
        return RuntimeError(
            f"{self.name} did not start: {exc}\n--- {self.log_path}\n" + _tail(self.log_path)
        )


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- Kafka

_KAFKA_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
"""


def _kafka_cluster_id() -> str:
    """A random cluster id the storage tool's argument parser reads as a value.

    Base64url of a UUID starts with '-' one time in 64, and is then taken for an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker:
    """Single-node KRaft Apache Kafka (broker + controller) on loopback."""

    def __init__(
        self, workdir: Path, libs: Path | None = None, fsync_every_message: bool = True
    ) -> None:
        """`fsync_every_message=False` keeps Kafka's production default (the OS flushes the
        page cache; durability comes from replication): the benchmark's setting."""
        self.fsync_every_message = fsync_every_message
        self.libs = libs or kafka_dir() / "libs"
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise MissingDependency(f"Kafka broker jars not found in {self.libs}; {INSTALL_HINT}")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.properties = workdir / "server.properties"
        self._process = _Process("kafka broker", workdir / "broker.out")
        self._write_config()
        self._format()

    def _write_config(self) -> None:
        listeners = (
            f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
        )
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        if self.fsync_every_message:  # the tests: an acknowledged message is on disk
            settings["log.flush.interval.messages"] = "1"
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.workdir / "log4j2.properties").write_text(
            _KAFKA_LOG4J.format(log=self.workdir / "server.log", level="INFO")
        )

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java", "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-cp", f"{self.libs}/*", main, *args,
        ]  # fmt: skip

    def _format(self) -> None:
        cluster_id = _kafka_cluster_id()
        cmd = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                         "-c", str(self.properties), "--standalone")  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {done.stdout}{done.stderr}")

    def _answers(self) -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000})
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)

    def start(self, timeout: float = 90) -> None:
        """Start the broker (same port, same data) and wait until it answers metadata requests."""
        if self._process.running:
            return
        proc = self._process.spawn(
            self._java("kafka.Kafka", str(self.properties)), dict(os.environ), self.workdir
        )
        try:
            wait_until(self._answers, timeout, f"kafka broker on {self.bootstrap}", proc)
        except Exception as exc:
            self._process.signal(signal.SIGKILL, 10)
            raise self._process.failure(exc) from exc

    def stop(self, timeout: float = 60) -> None:
        """Graceful shutdown (SIGTERM)."""
        self._process.signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Hard crash (SIGKILL), as a power cut would."""
        self._process.signal(signal.SIGKILL, 10)

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process.running


# --------------------------------------------------------------------------- S3

S3_BINARY = "versitygw"


class S3Server:
    """S3-compatible server (versitygw, POSIX backend) on loopback with one bucket."""

    region = "us-east-1"

    def __init__(self, workdir: Path, bucket: str = "smart-trader") -> None:
        self.binary = bin_dir() / S3_BINARY
        if not os.access(self.binary, os.X_OK):
            raise MissingDependency(f"S3 server binary {self.binary} not found; {INSTALL_HINT}")
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_port = f"127.0.0.1:{self.port}"
        self.endpoint = f"http://{self.host_port}"
        self.access_key = "st-test-access"
        self.secret_key = "st-test-secret-key-0123456789"
        self.bucket = bucket
        self._process = _Process("s3 server", workdir / "server.out")

    def client(self) -> Any:
        """A ``minio`` Python client for this server."""
        from minio import Minio

        return Minio(self.host_port, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False, region=self.region)  # fmt: skip

    def storage_options(self) -> dict[str, str]:
        """deltalake storage options (endpoint WITH http://, see STACK.md)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def env(self) -> dict[str, str]:
        """AWS_* variables for a process (st reads secrets only from the environment)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def _answers(self) -> bool:
        self.client().list_buckets()
        return True

    def start(self, timeout: float = 30) -> None:
        """Start the server (same port, same data) and make sure the bucket exists."""
        if self._process.running:
            return
        cmd = [str(self.binary), "--access", self.access_key, "--secret", self.secret_key,
               "--port", self.host_port, "--region", self.region,
               "posix", "--sidecar", str(self.workdir / "meta"), str(self.data_dir)]  # fmt: skip
        (self.workdir / "meta").mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROOT_", "VGW_"))}
        proc = self._process.spawn(cmd, env, self.workdir)
        try:
            wait_until(self._answers, timeout, f"s3 server on {self.endpoint}", proc)
            client = self.client()
            if not client.bucket_exists(self.bucket):
                client.make_bucket(self.bucket)
        except Exception as exc:
            self._process.signal(signal.SIGKILL, 10)
            raise self._process.failure(exc) from exc

    def stop(self, timeout: float = 30) -> None:
        """Graceful shutdown (SIGTERM)."""
        self._process.signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Hard crash (SIGKILL)."""
        self._process.signal(signal.SIGKILL, 10)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process.running


# --------------------------------------------------------------------------- Spark


def pyspark_home() -> Path:
    """The pyspark installation, which is a complete SPARK_HOME."""
    import importlib.util

    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise MissingDependency("pyspark is not installed; pip install -e '.[spark]'")
    return Path(spec.origin).parent


def spark_env(home: Path | None = None) -> dict[str, str]:
    """Environment for Spark processes: loopback, this interpreter for Python workers."""
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(home or pyspark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        SPARK_DAEMON_MEMORY="512m",
    )
    return env


class SparkStandalone:
    """A Spark standalone master and one worker (1 core, 1 GiB) on loopback."""

    def __init__(self, workdir: Path, cores: int = 1, memory: str = "1g") -> None:
        self.home = pyspark_home()
        self.spark_class = self.home / "bin" / "spark-class"
        if not self.spark_class.exists():
            raise MissingDependency(f"{self.spark_class} missing; reinstall pyspark")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ui_port = free_port()
        self.worker_ui_port = free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.cores = cores
        self.memory = memory
        self._master = _Process("spark master", workdir / "master.out")
        self._worker = _Process("spark worker", workdir / "worker.out")

    def state(self) -> dict[str, Any]:
        """The master's JSON status page."""
        url = f"http://127.0.0.1:{self.ui_port}/json"
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.load(response))

    def _worker_alive(self) -> bool:
        return any(w.get("state") == "ALIVE" for w in self.state().get("workers", []))

    def start(self, timeout: float = 90) -> None:
        """Start master and worker; wait until the worker registered."""
        env = spark_env(self.home)
        env["SPARK_WORKER_DIR"] = str(self.workdir / "work")
        master_cmd = [str(self.spark_class), "org.apache.spark.deploy.master.Master",
                      "--host", "127.0.0.1", "--port", str(self.port),
                      "--webui-port", str(self.ui_port)]  # fmt: skip
        worker_cmd = [str(self.spark_class), "org.apache.spark.deploy.worker.Worker", self.url,
                      "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", self.memory,
                      "--webui-port", str(self.worker_ui_port),
                      "--work-dir", str(self.workdir / "work")]  # fmt: skip
        try:
            if not self._master.running:
                proc = self._master.spawn(master_cmd, env, self.workdir)
                wait_until(lambda: bool(self.state()), timeout, "spark master", proc)
            if not self._worker.running:
                proc = self._worker.spawn(worker_cmd, env, self.workdir)
                wait_until(self._worker_alive, timeout, "spark worker registration", proc)
        except Exception as exc:
            failed = self._worker if self._master.running else self._master
            self.stop()
            raise failed.failure(exc) from exc

    def stop(self) -> None:
        """Stop worker then master."""
        self._worker.signal(signal.SIGTERM, 30)
        self._master.signal(signal.SIGTERM, 30)


# --------------------------------------------------------------------------- config


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.replace("__", ".").split(".")
    node: Any = tree
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"config key {'.'.join(parts[: i + 1])!r} does not exist")
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, dict):
        raise KeyError(f"config key {'.'.join(parts[:-1])!r} is not a section")
    # free-form maps (default {}) such as lake.storage_options accept new keys
    if leaf not in node and node:
        raise KeyError(f"config key {dotted!r} does not exist")
    node[leaf] = value


def write_config(directory: Path, overrides: dict[str, Any] | None = None, **dotted: Any) -> Path:
    """Write ``<directory>/smarttrader.yaml``: the defaults, local dirs under ``directory``,
    then the overrides (``{"lake.root": ...}`` or ``lake__root=...``); returns its path."""
    directory = Path(directory)
    tree = yaml.safe_load(defaults_text())
    local = {
        "lake.root": directory / "lake",
        "runtime.state_dir": directory / "state",
        "runtime.log_dir": directory / "logs",
        "webhook.spool_dir": directory / "spool",
        "stream.local_dir": directory / "stream",
    }
    for key, value in {**local, **(overrides or {}), **dotted}.items():
        _set_dotted(tree, key, str(value) if isinstance(value, Path) else value)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "smarttrader.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def cache_summary() -> str:
    """One line naming the cache in use, for failure messages."""
    return f"cache {cache_dir()}"
