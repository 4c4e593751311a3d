"""A simulated Telegram Bot API on loopback: `POST /bot<token>/sendMessage` answers as
Telegram does (`{"ok": true, "result": {...}}`) and records each message with the time it
arrived, so `st demo` and the follow benchmark can say when an alert reached the channel.
Point `alerts.telegram.base_url` at `FakeTelegram.url`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivered:
    """One message the fake Telegram accepted: its chat, text and arrival (unix seconds)."""

    chat_id: str
    text: str
    at: float


class FakeTelegram:
    """The sendMessage endpoint in a daemon thread; `messages` in arrival order."""

    def __init__(self, token: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.messages: list[Delivered] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="st-sim-telegram", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeTelegram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def received(self) -> list[Delivered]:
        with self._lock:
            return list(self.messages)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                if (
                    self.path != f"/bot{fake.token}/sendMessage"
                    or not isinstance(doc, dict)
                    or not doc.get("text")
                ):
                    answer = {"ok": False, "error_code": 400, "description": "Bad Request"}
                    return self._answer(400, answer)
                with fake._lock:
                    fake.messages.append(Delivered(str(doc.get("chat_id")), doc["text"], at))
                    message_id = len(fake.messages)
                self._answer(200, {"ok": True, "result": {"message_id": message_id}})

            def _answer(self, status: int, doc: dict[str, object]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
