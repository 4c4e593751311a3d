"""`st webhook serve` as a process, over real sockets: slow clients, limits, a bad port."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import free_port, wait_until, write_config

ST = Path(sys.executable).parent / "st"
TOKEN = "slow-client-token"
WEBHOOK_HEADERS = (
    b"POST /webhooks HTTP/1.1\r\nHost: t\r\nAuthorization: " + TOKEN.encode() + b"\r\n"
    b"Content-Type: application/json\r\n"
)
TIMEOUT = 0.6  # header and body timeouts of the test server


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_")}
    env.update(ST_CONFIG=str(config), ST_WEBHOOK_AUTH_TOKEN=TOKEN)
    return env


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path.encode())
        return read_all(sock)


def _health(port: int) -> bool:
    return _get(port, "/health").startswith(b"HTTP/1.1 200")


def rejected(port: int, reason: str) -> int:
    """The receiver's count of requests rejected for `reason` (GET /metrics)."""
    series = f'st_webhook_requests_rejected_total{{reason="{reason}"}} '.encode()
    line = next(x for x in _get(port, "/metrics").splitlines() if x.startswith(series))
    return int(line.split()[-1])


class Server:
    """One `st webhook serve` process on a free port; `webhook.*` overrides as keywords."""

    def __init__(self, directory: Path, **webhook: Any) -> None:
        self.port = free_port()
        overrides = {f"webhook.{k}": v for k, v in webhook.items()}
        config = write_config(directory, {"webhook.port": self.port, **overrides})
        self.proc = subprocess.Popen(
            [str(ST), "webhook", "serve"],
            env=_env(config),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: _health(self.port), 60, "webhook server", self.proc)
        except BaseException:
            self.stop()
            raise

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("serve"),
        header_timeout_seconds=TIMEOUT,
        body_timeout_seconds=TIMEOUT,
        keep_alive_timeout_seconds=TIMEOUT,
        max_header_bytes=8192,
    )
    yield srv
    srv.stop()


def read_all(sock: socket.socket, within: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not)."""
    deadline = time.monotonic() + within
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"connection still open after {within} s; got {data!r}") from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.lower().split(b"\r\n") if b"content-length" in line).split(b":")[
            1
        ]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_headers_then_idle_is_answered_408_and_closed(server: Server) -> None:
    before = rejected(server.port, "timeout")
    with server.connect() as sock:
        sock.sendall(WEBHOOK_HEADERS + b"Content-Length: 100\r\n\r\n")
        began = time.monotonic()
        answer = read_all(sock)
    elapsed = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"error":"timeout"' in answer
    assert TIMEOUT * 0.8 < elapsed < TIMEOUT + 3
    assert rejected(server.port, "timeout") == before + 1


def test_a_body_sent_drop_by_drop_is_cut_off_by_one_deadline(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(WEBHOOK_HEADERS + b"Content-Length: 1000\r\n\r\n")
        began = time.monotonic()
        while time.monotonic() - began < TIMEOUT + 3:  # a byte every 50 ms: each read
            if select.select([sock], [], [], 0.05)[0]:  # is quick, the whole body is not
                break
            try:
                sock.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - began < TIMEOUT + 3


def test_a_request_in_pieces_within_the_deadlines_is_accepted(server: Server) -> None:
    body = b'[{"signature":"in-pieces-1"}]'
    request = WEBHOOK_HEADERS + b"Content-Length: %d\r\n\r\n" % len(body) + body
    with server.connect() as sock:
        for piece in (request[:20], request[20:-10], request[-10:]):
            sock.sendall(piece)
            time.sleep(TIMEOUT / 3)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_incomplete_headers_then_idle_are_answered_408_and_closed(server: Server) -> None:
    before = rejected(server.port, "header_timeout")
    with server.connect() as sock:
        sock.sendall(b"POST /webhooks HTTP/1.1\r\nHost: t\r\n")
        began = time.monotonic()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert TIMEOUT * 0.8 < time.monotonic() - began < TIMEOUT + 3
    assert rejected(server.port, "header_timeout") == before + 1


def test_headers_sent_line_by_line_are_cut_off_by_one_deadline(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST /webhooks HTTP/1.1\r\n")
        began = time.monotonic()
        try:
            for i in range(200):
                sock.sendall(b"X-Drip-%d: 1\r\n" % i)
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        read_all(sock)
    assert time.monotonic() - began < TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with server.connect() as sock:
        began = time.monotonic()
        assert read_all(sock) == b""
    assert TIMEOUT * 0.8 < time.monotonic() - began < TIMEOUT + 3


def test_oversized_headers_are_431_and_closed(server: Server) -> None:
    with server.connect() as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n")
            for _ in range(64):
                sock.sendall(b"X-Pad: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer
    assert rejected(server.port, "headers_too_large") >= 1


def test_prompt_clients_keep_their_connection_until_idle(server: Server) -> None:
    body = b'[{"signature":"prompt-client-1"}]'
    request = WEBHOOK_HEADERS + b"Content-Length: %d\r\n\r\n" % len(body) + body
    with server.connect() as sock:
        for _ in range(2):
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200")
        began = time.monotonic()
        assert read_all(sock) == b""  # closed once idle past the keep-alive timeout
    assert TIMEOUT * 0.8 < time.monotonic() - began < TIMEOUT + 3


def test_connections_past_the_limit_get_503(tmp_path: Path) -> None:
    srv = Server(tmp_path, max_connections=3, header_timeout_seconds=30)
    idle: list[socket.socket] = []
    try:
        idle = [srv.connect() for _ in range(2)]
        time.sleep(0.3)
        assert _health(srv.port)  # the third connection is still served
        idle.append(srv.connect())
        time.sleep(0.3)
        with srv.connect() as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 503")
        for sock in idle:
            sock.close()
        wait_until(lambda: _health(srv.port), 10, "a free connection slot")
    finally:
        for sock in idle:
            sock.close()
        srv.stop()


@pytest.mark.parametrize("port", [0, 99999])
def test_serve_refuses_a_port_outside_1_to_65535(tmp_path: Path, port: int) -> None:
    config = write_config(tmp_path, {"webhook.port": port})
    try:
        result = subprocess.run(
            [str(ST), "webhook", "serve"],
            env=_env(config),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"st webhook serve started with webhook.port {port}")
    assert result.returncode == 2, result.stderr
    assert "webhook.port" in result.stderr and str(port) in result.stderr
