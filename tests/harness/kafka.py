"""A single-node KRaft Apache Kafka (broker and controller) on loopback, from the project cache."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from smarttrader_cli.ops.cache import kafka_dir
from tests.harness.process import INSTALL_HINT, MissingDependency, Service, free_port

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


class _Silent:
    """Drops librdkafka's log: "connection refused" is what `answers` expects while starting."""

    def log(self, level: int, msg: str, *args: object) -> None:
        pass


_SILENT = _Silent()


class KafkaBroker(Service):
    """Single-node KRaft Apache Kafka (broker + controller) on loopback."""

    start_timeout = 90
    stop_timeout = 60

    def __init__(
        self, workdir: Path, libs: Path | None = None, fsync_every_message: bool = True
    ) -> None:
        """`fsync_every_message=False` keeps Kafka's production default (the OS flushes the
        page cache; durability comes from replication): the benchmark's setting."""
        self.fsync_every_message = fsync_every_message
        self.libs = libs or kafka_dir() / "libs"
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise MissingDependency(f"Kafka broker jars not found in {self.libs}; {INSTALL_HINT}")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        super().__init__("kafka broker", workdir, "broker.out", address=self.bootstrap)
        self.data_dir = workdir / "data"
        self.properties = workdir / "server.properties"
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

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties))

    def answers(self) -> bool:
        """True once the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000, "logger": _SILENT}
        )
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)
