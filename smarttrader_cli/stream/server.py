"""`st webhook serve`: the Starlette app that receives Helius enhanced-transaction webhooks.

POST /webhooks answers 200 only once every event in the body is durable (see
publisher.py); 401 on a wrong or missing Authorization header (compared in constant
time), 413 past `webhook.max_body_bytes` (counted while the body streams in), 422 with
the reason when the body is not a JSON array of events with a `signature` (or cannot be
stored), 503 when the events could be neither acknowledged nor spooled (Helius retries
5xx). Each event is published as the bytes it had in the body, not re-encoded.
GET /health, /webhooks/status and /metrics (Prometheus text) for operators.
Slow clients (408), oversized headers (431) and the connection limit: connections.py.
"""

from __future__ import annotations

import gc
import hmac
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from smarttrader_cli.stream.backend import OutboundEvent, Producer
from smarttrader_cli.stream.body import BodyError, body_events
from smarttrader_cli.stream.metrics import Metrics
from smarttrader_cli.stream.parse import signature_problem
from smarttrader_cli.stream.publisher import NotDurableError, Publisher
from smarttrader_cli.stream.spool import Spool

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config

log = logging.getLogger("st.webhook")
# One event is one broker message: librdkafka refuses messages past message.max.bytes
# (1,000,000 by default) with no retry that could ever succeed, so such an event would
# sit at the head of the spool for good. Refused here instead, with room for key and headers.
MAX_EVENT_BYTES = 990_000

REJECT_REASONS = (
    "unauthorized",
    "too_large",
    "invalid_json",
    "not_a_list",
    "invalid_event",
    "unavailable",
    "timeout",
    "header_timeout",
    "headers_too_large",
)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def new_metrics() -> Metrics:
    metrics = Metrics()
    metrics.counter("st_webhook_events_received_total", "events in accepted-for-processing bodies")
    metrics.counter("st_webhook_events_published_total", "events acknowledged by the stream")
    metrics.counter("st_webhook_events_spooled_total", "events fsynced to the spool")
    metrics.counter("st_webhook_events_republished_total", "spooled events re-published")
    metrics.counter("st_webhook_events_duplicate_total", "repeated signatures not republished")
    metrics.counter("st_webhook_requests_total", "POST /webhooks requests")
    metrics.labeled_counter("st_webhook_requests_rejected_total", "rejected requests by reason")
    for reason in REJECT_REASONS:
        metrics.labeled["st_webhook_requests_rejected_total"][reason] = 0
    return metrics


def create_app(
    config: Config,
    producer: Producer,
    auth_token: str | None,
    spool: Spool | None = None,
) -> _FastWebhooks:
    """The receiver wired to a producer (and, for Kafka, a spool)."""
    metrics = new_metrics()
    publisher = Publisher(
        producer,
        spool,
        metrics,
        producer_timeout=config.stream.producer_timeout_seconds,
        dedupe_window=config.webhook.dedupe_window_seconds,
    )
    metrics.gauge(
        "st_webhook_spool_depth", "events spooled, not yet re-published",
        lambda: spool.depth if spool else 0,
    )  # fmt: skip
    metrics.gauge(
        "st_webhook_broker_up", "1 when the last publish was acknowledged",
        lambda: 1.0 if publisher.broker_up else 0.0,
    )  # fmt: skip
    token = auth_token.encode() if auth_token else None
    started = time.time()

    webhooks = _WebhookEndpoint(
        publisher,
        metrics,
        token,
        max_body=config.webhook.max_body_bytes,
    )

    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def status(request: Request) -> Response:
        broker = {None: "unknown", True: "up", False: "down"}[publisher.broker_up]
        rejected = metrics.labeled["st_webhook_requests_rejected_total"]
        return _json(
            200,
            {
                "backend": config.stream.backend,
                "destination": producer.describe(),
                "broker": broker,
                "spool_depth": spool.depth if spool else 0,
                "received": metrics.value("st_webhook_events_received_total"),
                "published": metrics.value("st_webhook_events_published_total"),
                "spooled": metrics.value("st_webhook_events_spooled_total"),
                "duplicates": metrics.value("st_webhook_events_duplicate_total"),
                "rejected": dict(rejected),
                "last_event_at": publisher.last_event_at,
                "uptime_seconds": round(time.time() - started, 1),
            },
        )

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        publisher.start()
        log.info("webhook receiver publishing to %s", producer.describe())
        try:
            yield
        finally:
            await publisher.close()
            log.info("webhook receiver stopped; producer flushed")

    app = Starlette(
        routes=[
            Route("/webhooks", webhooks, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/webhooks/status", status, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.publisher = publisher
    return _FastWebhooks(app, webhooks)


class _FastWebhooks:
    """POST /webhooks straight to its endpoint; everything else through Starlette.

    The receiver's hot path skips Starlette's routing, middleware and Request/Response
    objects (a third of the per-request CPU); other methods on /webhooks still get 405.
    """

    def __init__(self, app: Starlette, webhooks: _WebhookEndpoint) -> None:
        self.app = app
        self.webhooks = webhooks
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/webhooks":
            await self.webhooks(scope, receive, send)
        else:
            await self.app(scope, receive, send)


_JSON = (b"content-type", b"application/json")


class _WebhookEndpoint:
    """POST /webhooks as a plain ASGI app: auth, body cap, validation, then the publisher."""

    def __init__(
        self,
        publisher: Publisher,
        metrics: Metrics,
        token: bytes | None,
        max_body: int,
    ) -> None:
        self.publisher = publisher
        self.metrics = metrics
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        self.metrics.inc("st_webhook_requests_total")
        try:
            status, body, extra = await self._handle(scope, receive)
        finally:
            self.metrics.observe(time.perf_counter() - began)
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _reject(self, status: int, reason: str, message: str) -> _Answer:
        self.metrics.inc("st_webhook_requests_rejected_total", label=reason)
        extra = _EXTRA_HEADERS.get(status, [])
        return status, orjson.dumps({"error": reason, "detail": message}), extra

    async def _handle(self, scope: Scope, receive: Receive) -> _Answer:
        given = b""
        declared = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
            elif name == b"content-length":
                declared = value
        if self.token is not None and not hmac.compare_digest(given, self.token):
            return self._reject(401, "unauthorized", "missing or wrong Authorization header")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return self._reject(413, "too_large", f"body is larger than {self.max_body} bytes")
        body = await self._read_body(receive)
        if isinstance(body, tuple):
            return body
        try:  # each event is stored as the bytes it was sent (body.py)
            payload, raw = body_events(body)
        except BodyError as exc:
            return self._reject(422, exc.reason, str(exc))
        for i, event in enumerate(payload):
            problem = signature_problem(event)
            if problem:
                return self._reject(422, "invalid_event", f"event {i}: {problem}")
            if len(raw[i]) > MAX_EVENT_BYTES:
                return self._reject(
                    413, "too_large", f"event {i} is larger than {MAX_EVENT_BYTES} bytes"
                )
        received = time.time_ns() // 1000
        events = [
            OutboundEvent(event["signature"].strip().encode(), value, received)
            for event, value in zip(payload, raw, strict=True)
        ]
        try:
            outcome = await self.publisher.submit(events)
        except NotDurableError:
            return self._reject(503, "unavailable", "events could not be made durable; retry")
        answer = {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
        return 200, orjson.dumps(answer), []

    async def _read_body(self, receive: Receive) -> bytes | _Answer:
        """The whole body, counted as it streams in whatever its declared length; or a 4xx."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # also after a 408 from connections.py
                return _GONE  # nobody to answer, nothing to count
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return self._reject(413, "too_large", f"body is larger than {self.max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
_GONE: _Answer = (400, b"", [])  # uvicorn drops what is sent on a closed connection
_EXTRA_HEADERS: dict[int, list[tuple[bytes, bytes]]] = {503: [(b"retry-after", b"1")]}


def serve(config: Config, auth_token: str | None, log_level: str = "warning") -> None:
    """Run the receiver under uvicorn until SIGINT/SIGTERM, then flush and exit."""
    import uvicorn

    from smarttrader_cli.config.loader import check_values
    from smarttrader_cli.stream.backend import open_backend, open_producer
    from smarttrader_cli.stream.connections import ConnectionLimits, guarded_protocol

    # The loader checks these (the CLI's --host/--port included); a config built or changed
    # in code is checked again: uvloop would listen on port 99999 modulo 65536 without a word.
    check_values(config, sections=("webhook", "stream"))
    settings = config.webhook
    # The publisher thread needs the GIL back after every write/fsync/ack wait; with the
    # default 5 ms switch interval each hand-over stalls a whole group commit.
    sys.setswitchinterval(0.0005)
    producer = open_producer(config)
    spool = Spool(settings.spool_dir) if open_backend(config.stream).needs_spool else None
    app = create_app(config, producer, auth_token, spool)
    metrics = app.state.metrics
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        keep_alive_timeout=settings.keep_alive_timeout_seconds,
        on_reject=lambda reason: metrics.inc("st_webhook_requests_rejected_total", label=reason),
    )
    # Everything alive now lives as long as the server: keep it out of the cyclic GC's
    # full collections, whose pauses (≈20 ms with it) stall every request in flight.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # the client address is not used: skip that middleware
        server_header=False,
        loop="uvloop",
        http=guarded_protocol(limits),  # httptools, with deadlines and a header cap
        # uvicorn's count includes the connection asking: +1 serves max_connections of them.
        limit_concurrency=settings.max_connections + 1,
        timeout_graceful_shutdown=max(10, int(config.stream.producer_timeout_seconds) + 5),
    )
