"""Child processes for the test services: one process group each, a log file, a `Service` base.

A service listens on loopback only, keeps its data in a temporary directory and can be stopped
and started again on the same port with the same data. Whatever is still running when the
interpreter exits is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

INSTALL_HINT = "run `bash scripts/install-deps.sh` to fill the cache"
_RUNNING: set[subprocess.Popen[bytes]] = set()


def missing(message: str) -> NoReturn:
    """Fail the test for a dependency the install script provides; skip it only when the
    run opts out with ST_TESTS_ALLOW_MISSING=1 (CI never does: there a gap fails)."""
    import pytest

    if os.environ.get("ST_TESTS_ALLOW_MISSING") == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def cached_binary(name: str) -> Path:
    """A binary from the project cache; `missing` when it is absent."""
    from smarttrader_cli.ops.cache import bin_dir

    path = bin_dir() / name
    if not path.is_file():
        missing(f"{path} missing: run `bash scripts/install-deps.sh`")
    return path


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


class Service:
    """A server run as one child process: `start` waits until it answers, `stop`/`kill` end it.

    A subclass gives the command, its environment, the readiness probe and what to do once the
    server answers (create a bucket, say).
    """

    start_timeout: float = 30
    stop_timeout: float = 30

    def __init__(self, name: str, workdir: Path, log_name: str, address: str = "") -> None:
        self.name = name
        self.workdir = workdir
        self.address = address
        self._process = _Process(name, workdir / log_name)

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def process_env(self) -> dict[str, str]:
        """The server's environment."""
        return dict(os.environ)

    def answers(self) -> bool:
        """True once the server serves requests (an exception counts as "not yet")."""
        raise NotImplementedError

    def ready(self) -> None:
        """Called once the server answers, before `start` returns."""

    def start(self, timeout: float | None = None) -> None:
        """Start the server (same port, same data) and wait until it answers."""
        if self._process.running:
            return
        proc = self._process.spawn(self.command(), self.process_env(), self.workdir)
        try:
            what = f"{self.name} on {self.address}" if self.address else self.name
            wait_until(self.answers, timeout or self.start_timeout, what, proc)
            self.ready()
        except Exception as exc:
            self._process.signal(signal.SIGKILL, 10)
            raise self._process.failure(exc) from exc

    def stop(self, timeout: float | None = None) -> None:
        """Graceful shutdown (SIGTERM)."""
        self._process.signal(signal.SIGTERM, timeout or self.stop_timeout)

    def kill(self) -> None:
        """Hard crash (SIGKILL), as a power cut would."""
        self._process.signal(signal.SIGKILL, 10)

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process.running
