"""The simulator's HTTP server: BirdEye and Helius endpoints with rate limit and faults.

Python API (what the demo and tests use)::

    from smarttrader_cli.sim.market import SimSettings
    from smarttrader_cli.sim.server import run_in_thread

    sim = run_in_thread(SimSettings(seed=7, wallets=30, tokens=8, trades=3000))
    sim.base_url          # "http://127.0.0.1:<free port>": birdeye.base_url and
                          # helius.api_base_url both point here
    sim.market.truth()    # planted wallets by role, pool/exchange/burn holders (GET /sim/truth)
    sim.market.labels()   # every planted address -> its label
    sim.stats()           # request, status, 429 and fault counts (also GET /sim/stats)
    sim.stop()            # or use it as a context manager: `with run_in_thread(...) as sim:`

Routes: GET /defi/v3/token/list, /defi/tokenlist, /defi/v3/token/holder,
/trader/txs/seek_by_time, /defi/v2/tokens/top_traders, /trader/gainers-losers,
/defi/price, /defi/history_price, GET/POST /defi/multi_price, /defi/token_security (rate limited: a 429 carries `Retry-After: 1` and `X-RateLimit-Reset`; faulty at
`fault_rate`; X-API-KEY checked only when `birdeye_api_key` is set; paths in
`denied_paths` answer 403, as endpoints outside a key's plan do); GET/POST /v0/webhooks and GET/PUT/DELETE
/v0/webhooks/{id} (`?api-key=` required, checked when `helius_api_key` is set);
GET /sim/truth, /sim/stats, /health.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smarttrader_cli.sim import birdeye_api, discovery_api, price_api, security_api
from smarttrader_cli.sim.discovery_api import DiscoveryIndex
from smarttrader_cli.sim.helius_api import WebhookStore
from smarttrader_cli.sim.market import Market, SimSettings
from smarttrader_cli.sim.trades import TradeBook

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

MALFORMED_BODY = '{"success": true, "data": {"items": [{"quote": {"symbol": "SO'


class RateLimiter:
    """A token bucket holding one second of requests: beyond it, 429."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def reset_in(self) -> float:
        """Seconds until the next request would be allowed."""
        return 0.0 if self.rate <= 0 else max(0.0, (1 - self.tokens) / self.rate)

    def allow(self) -> bool:
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class SimState:
    """Everything one running simulator holds."""

    settings: SimSettings
    market: Market
    book: TradeBook
    discovery: DiscoveryIndex
    webhooks: WebhookStore = field(default_factory=WebhookStore)
    stats: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(cls, settings: SimSettings) -> SimState:
        market = Market(settings)
        return cls(settings, market, TradeBook(market), DiscoveryIndex(market))


def create_app(state: SimState) -> Starlette:
    """The Starlette application serving one simulated market."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    settings = state.settings
    limiter = RateLimiter(settings.rate_limit)
    faults = random.Random(settings.seed * 7919 + 1)

    denied = frozenset(settings.denied_paths)

    def birdeye(
        handler: Callable[[dict[str, Any]], tuple[int, Any]], threaded: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            stats = state.stats
            stats["birdeye_requests"] += 1
            stats[f"path {request.url.path}"] += 1
            key = settings.birdeye_api_key
            if key and request.headers.get("x-api-key") != key:
                stats["status 401"] += 1
                return JSONResponse({"success": False, "message": "Unauthorized"}, 401)
            outage = settings.outage_after_requests
            if outage and stats["birdeye_requests"] > outage:
                stats["status 503"] += 1
                return JSONResponse({"success": False, "message": "outage"}, 503)
            if not limiter.allow():
                stats["status 429"] += 1
                reset = int(time.time() + limiter.reset_in()) + 1
                headers = {"Retry-After": "1", "X-RateLimit-Reset": str(reset)}
                body = {"success": False, "message": "Too many requests"}
                return JSONResponse(body, 429, headers=headers)
            if request.url.path in denied:
                stats["status 403"] += 1
                message = f"Your API key's plan does not include {request.url.path}"
                return JSONResponse({"success": False, "message": message}, 403)
            if settings.fault_rate > 0 and faults.random() < settings.fault_rate:
                kind = faults.choice(("500", "503", "slow", "malformed"))
                stats[f"fault {kind}"] += 1
                if kind == "slow":
                    await asyncio.sleep(settings.fault_delay_seconds)
                elif kind == "malformed":
                    return Response(MALFORMED_BODY, 200, media_type="application/json")
                else:
                    return JSONResponse({"success": False, "message": "Internal error"}, int(kind))
            params: dict[str, Any] = dict(request.query_params)
            if request.method == "POST":
                try:
                    posted = json.loads(await request.body() or b"{}")
                except ValueError:
                    posted = None
                if not isinstance(posted, dict):
                    return JSONResponse(
                        {"success": False, "message": "body is not a JSON object"}, 400
                    )
                params.update(posted)
            try:
                if threaded:  # may build the discovery index: keep serving meanwhile
                    status, body = await asyncio.to_thread(handler, params)
                else:
                    status, body = handler(params)
            except birdeye_api.BadRequest as exc:
                status, body = birdeye_api.error(400, str(exc))
            stats[f"status {status}"] += 1
            return JSONResponse(body, status)

        return endpoint

    def helius(
        handler: Callable[[Request, Any], tuple[int, Any]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state.stats[f"helius {request.method}"] += 1
            key = request.query_params.get("api-key")
            if not key or (settings.helius_api_key and key != settings.helius_api_key):
                return JSONResponse({"error": "invalid api key"}, 401)
            body = None
            if request.method in ("POST", "PUT"):
                try:
                    body = json.loads(await request.body())
                except ValueError:
                    return JSONResponse({"error": "body is not JSON"}, 400)
            status, payload = handler(request, body)
            if status == 204:
                return Response(status_code=204)
            return JSONResponse(payload, status)

        return endpoint

    market, book, hooks, found = state.market, state.book, state.webhooks, state.discovery

    async def webhooks_root(request: Request) -> Response:
        if request.method == "GET":
            return await helius(lambda r, b: hooks.list())(request)
        return await helius(lambda r, b: hooks.create(b))(request)

    async def webhook_item(request: Request) -> Response:
        hook_id = request.path_params["webhook_id"]
        handlers: dict[str, Callable[[Request, Any], tuple[int, Any]]] = {
            "GET": lambda r, b: hooks.get(hook_id),
            "PUT": lambda r, b: hooks.update(hook_id, b),
            "DELETE": lambda r, b: hooks.delete(hook_id),
        }
        return await helius(handlers[request.method])(request)

    async def truth(request: Request) -> Response:
        return JSONResponse(market.truth())

    async def stats(request: Request) -> Response:
        return JSONResponse({**state.stats, "webhook_edits": hooks.edits})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "seed": settings.seed})

    routes = [
        Route("/defi/v3/token/list", birdeye(lambda p: birdeye_api.token_list_v3(market, p))),
        Route("/defi/tokenlist", birdeye(lambda p: birdeye_api.token_list_v1(market, p))),
        Route("/defi/v3/token/holder", birdeye(lambda p: birdeye_api.token_holders(market, p))),
        Route(
            "/trader/txs/seek_by_time",
            birdeye(lambda p: birdeye_api.seek_by_time(market, book, p)),
        ),
        Route(
            "/defi/v2/tokens/top_traders",
            birdeye(lambda p: discovery_api.top_traders(market, found, p), threaded=True),
        ),
        Route(
            "/trader/gainers-losers",
            birdeye(lambda p: discovery_api.gainers_losers(market, found, p), threaded=True),
        ),
        Route("/defi/price", birdeye(lambda p: price_api.price(market, p))),
        Route(
            "/defi/multi_price",
            birdeye(lambda p: price_api.multi_price(market, p)),
            methods=["GET", "POST"],
        ),
        Route("/defi/history_price", birdeye(lambda p: price_api.history_price(market, p))),
        Route("/defi/token_security", birdeye(lambda p: security_api.token_security(market, p))),
        Route("/v0/webhooks", webhooks_root, methods=["GET", "POST"]),
        Route("/v0/webhooks/{webhook_id}", webhook_item, methods=["GET", "PUT", "DELETE"]),
        Route("/sim/truth", truth),
        Route("/sim/stats", stats),
        Route("/health", health),
    ]
    return Starlette(routes=routes)


@dataclass
class RunningSim:
    """A simulator serving in a background thread."""

    base_url: str
    state: SimState
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def market(self) -> Market:
        return self.state.market

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def stats(self) -> dict[str, int]:
        """Request, status, 429 and fault counts so far."""
        return {**self.state.stats, "webhook_edits": self.state.webhooks.edits}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _server(state: SimState, sock: socket.socket) -> Any:
    import uvicorn

    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def run_in_thread(settings: SimSettings, host: str = "127.0.0.1", port: int = 0) -> RunningSim:
    """Start the simulator in a daemon thread on `port` (0 = a free port); returns once serving."""
    state = SimState.build(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = _server(state, sock)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="st-sim", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.02)
    bound = sock.getsockname()[1]
    return RunningSim(f"http://{host}:{bound}", state, server, thread)


def serve(settings: SimSettings, host: str = "127.0.0.1", port: int = 8900) -> None:
    """Serve in the foreground until interrupted."""
    import uvicorn

    state = SimState.build(settings)
    # the discovery index takes a while on a big market: build it before it is asked for
    threading.Thread(target=state.discovery.build, name="st-sim-discovery", daemon=True).start()
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
