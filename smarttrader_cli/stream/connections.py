"""The receiver's HTTP connections: uvicorn's httptools protocol with a header deadline and cap.

uvicorn times out only idle keep-alive connections: a client that connects and sends
nothing, or sends its headers a line at a time, holds its connection (and a slot of
`webhook.max_connections`) forever, and httptools buffers headers without limit. This
protocol gives each request `webhook.header_timeout_seconds` from its first byte (or
from the connection's opening) to finish its headers, all of them, however they trickle
in, and `webhook.max_header_bytes` of them. The body has its own deadline in the app
(server.py), which then answers 408.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("st.webhook")

_CLOSE = b"content-length: 0\r\nconnection: close\r\n\r\n"
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\n" + _CLOSE
HEADERS_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n" + _CLOSE


@dataclass(frozen=True)
class ConnectionLimits:
    """What a client gets before its connection is closed."""

    header_timeout: float  # seconds from the request's first byte to its last header
    max_header_bytes: int
    keep_alive_timeout: float  # idle seconds between requests
    on_reject: Callable[[str], None]  # counts "header_timeout" / "headers_too_large"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must complete their headers in time and in size."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn annotates it int, but hands it to call_later, which takes seconds.
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._request_started = False
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._reading_headers = True
        self._arm_deadline()  # a connection that never sends a byte is timed out too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        was_reading = self._reading_headers
        super().data_received(data)
        if not self._reading_headers:
            return
        # This request's headers are still incomplete after this chunk. A request that
        # comes whole in one chunk (nearly all) never costs a timer.
        if self._deadline is None:
            self._arm_deadline()
        if was_reading:  # memory stays within the cap plus one read
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                log.warning(
                    "closing a connection: headers over %d bytes", self.limits.max_header_bytes
                )
                self._refuse(HEADERS_TOO_LARGE, "headers_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_started = True
        if not self._reading_headers:  # the next request on a kept-alive connection
            self._reading_headers = True
            self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._request_started = False
        self._cancel_deadline()
        super().on_headers_complete()

    def _arm_deadline(self) -> None:
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._headers_timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        if self._request_started:
            self._refuse(TIMED_OUT, "header_timeout")
        elif not self.transport.is_closing():
            self.transport.close()  # nothing of a request arrived: nothing to answer

    def _refuse(self, answer: bytes, reason: str) -> None:
        self._cancel_deadline()
        self._reading_headers = False
        if self.transport.is_closing():
            return
        self.limits.on_reject(reason)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(answer)  # not in the middle of a pipelined response
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`: it makes one per connection, with `limits`."""
    return type("WebhookHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
