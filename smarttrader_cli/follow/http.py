"""`st follow`'s GET /health (JSON; 503 while stalled) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarttrader_cli.follow.state import FollowState

log = logging.getLogger("st.follow")


class HealthServer:
    """The two endpoints on `host:port`, served from a daemon thread."""

    def __init__(self, state: FollowState, host: str, port: int, stall_seconds: float) -> None:
        self.state = state
        self.stall_seconds = stall_seconds
        handler = _handler(self)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="st-follow-http", daemon=True
        )

    def start(self) -> HealthServer:
        self._thread.start()
        log.info("/health and /metrics on http://%s:%d", self.server.server_address[0], self.port)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(owner: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                healthy, body = owner.state.health(owner.stall_seconds)
                self._answer(200 if healthy else 503, json.dumps(body), "application/json")
            elif path == "/metrics":
                text = owner.state.metrics.render()
                self._answer(200, text, "text/plain; version=0.0.4")
            else:
                self._answer(404, '{"error": "not found"}', "application/json")

        def _answer(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
