"""The receiver's HTTP connections: uvicorn's httptools protocol with deadlines and a header cap.

uvicorn times out only idle keep-alive connections: a client that connects and sends
nothing, sends its headers a line at a time, or sends headers and then no body, holds
its connection (and a slot of `webhook.max_connections`) forever, and httptools buffers
headers without limit. This protocol gives each request `webhook.header_timeout_seconds`
from its first read (or from the connection's opening) to finish its headers, however
they trickle in, and `webhook.max_header_bytes` of them; then
`webhook.body_timeout_seconds` to finish its body. Past a deadline it answers 408 and
closes the connection (the app then sees a disconnect). The timers are armed only when
a read leaves a request incomplete: one that arrives in one read, as nearly all do,
costs none (an `asyncio.timeout` around the app's body read cost a tenth of the
throughput).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("st.webhook")


def _answer(status: bytes, reason: str, detail: str) -> bytes:
    """A complete response in the app's error format, closing the connection."""
    body = orjson.dumps({"error": reason, "detail": detail})
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    return head % (status, len(body)) + b"connection: close\r\n\r\n" + body


@dataclass(frozen=True)
class ConnectionLimits:
    """What a client gets before its connection is closed."""

    header_timeout: float  # seconds from the request's first read to its last header
    body_timeout: float  # seconds from its last header to the end of its body
    max_header_bytes: int
    keep_alive_timeout: float  # idle seconds between requests
    on_reject: Callable[[str], None]  # counts "header_timeout", "timeout", "headers_too_large"


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive in time, and with headers of bounded size."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn annotates it int, but hands it to call_later, which takes seconds.
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._reading_body = False
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
        if self._reading_body and self._deadline is None:
            self._arm_deadline()
        if not self._reading_headers:
            return
        if self._deadline is None:  # this read left the headers incomplete
            self._arm_deadline()
        if was_reading:  # memory stays within the cap plus one read
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                log.warning(
                    "closing a connection: headers over %d bytes", self.limits.max_header_bytes
                )
                detail = f"headers larger than {self.limits.max_header_bytes} bytes"
                answerable = self.cycle is None or self.cycle.response_complete
                status = b"431 Request Header Fields Too Large"
                self._refuse(status, "headers_too_large", detail, answerable)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_started = True
        if not self._reading_headers:  # the next request on a kept-alive connection
            self._reading_headers = True
            self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._request_started = False
        self._reading_body = True
        self._cancel_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading_body = False
        self._cancel_deadline()
        super().on_message_complete()

    def _arm_deadline(self) -> None:
        if self._reading_body:
            self._deadline = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)
        else:
            self._deadline = self.loop.call_later(
                self.limits.header_timeout, self._headers_timed_out
            )

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        if not self._request_started:  # nothing of a request arrived: nothing to answer
            self._refuse()
            return
        # The answer is the new request's, once the one before it (if any) is answered.
        answerable = self.cycle is None or self.cycle.response_complete
        detail = f"headers not received within {self.limits.header_timeout:g} s"
        self._refuse(b"408 Request Timeout", "header_timeout", detail, answerable)

    def _body_timed_out(self) -> None:
        self._deadline = None
        detail = f"body not received within {self.limits.body_timeout:g} s"
        # The app may have answered already (a 413 while the body kept coming).
        answerable = not self.cycle.response_started
        self._refuse(b"408 Request Timeout", "timeout", detail, answerable)

    def _refuse(
        self, status: bytes = b"", reason: str = "", detail: str = "", answer: bool = False
    ) -> None:
        """Close the connection, first counting `reason` and answering when `answer`."""
        self._cancel_deadline()
        self._reading_headers = self._reading_body = False
        if self.transport.is_closing():
            return
        if reason:
            self.limits.on_reject(reason)
        if answer:
            self.transport.write(_answer(status, reason, detail))
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=`: it makes one per connection, with `limits`."""
    return type("WebhookHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
