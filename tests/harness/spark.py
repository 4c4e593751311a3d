"""A Spark standalone cluster on loopback: one master and one worker, from the pyspark install."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.process import MissingDependency, Service, free_port


def pyspark_home() -> Path:
    """The pyspark installation, which is a complete SPARK_HOME."""
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


class _Daemon(Service):
    """A master or a worker (a `spark-class` main class), ready when `check` says so."""

    start_timeout = 90

    def __init__(self, role: str, workdir: Path, cmd: list[str], env: dict[str, str],
                 check: Callable[[], bool], address: str) -> None:  # fmt: skip
        super().__init__(f"spark {role}", workdir, f"{role}.out", address)
        self._cmd, self._env, self._check = cmd, env, check

    def command(self) -> list[str]:
        return self._cmd

    def process_env(self) -> dict[str, str]:
        return self._env

    def answers(self) -> bool:
        return self._check()


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
        env = spark_env(self.home)
        env["SPARK_WORKER_DIR"] = str(workdir / "work")
        master_cmd = [str(self.spark_class), "org.apache.spark.deploy.master.Master",
                      "--host", "127.0.0.1", "--port", str(self.port),
                      "--webui-port", str(self.ui_port)]  # fmt: skip
        worker_cmd = [str(self.spark_class), "org.apache.spark.deploy.worker.Worker", self.url,
                      "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory,
                      "--webui-port", str(self.worker_ui_port),
                      "--work-dir", str(workdir / "work")]  # fmt: skip
        self._master = _Daemon("master", workdir, master_cmd, env, self._master_answers,
                               f"127.0.0.1:{self.port}")  # fmt: skip
        self._worker = _Daemon("worker", workdir, worker_cmd, env, self._worker_alive, self.url)

    def state(self) -> dict[str, Any]:
        """The master's JSON status page."""
        url = f"http://127.0.0.1:{self.ui_port}/json"
        with urllib.request.urlopen(url, timeout=2) as response:
            return dict(json.load(response))

    def _master_answers(self) -> bool:
        return bool(self.state())

    def _worker_alive(self) -> bool:
        return any(w.get("state") == "ALIVE" for w in self.state().get("workers", []))

    def start(self, timeout: float | None = None) -> None:
        """Start master and worker; wait until the worker registered."""
        try:
            self._master.start(timeout)
            self._worker.start(timeout)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop worker then master."""
        self._worker.stop()
        self._master.stop()

    @property
    def running(self) -> bool:
        """True while both master and worker are alive."""
        return self._master.running and self._worker.running
