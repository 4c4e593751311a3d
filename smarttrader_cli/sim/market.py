"""The simulated market: tokens with price paths, wallets with roles, holders, the truth.

Everything is a pure function of `SimSettings` (seed and sizes): two markets built from
the same settings are identical. Per-wallet trade histories live in `sim.trades` and are
generated on demand, so the market itself stays small whatever the trade count.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature

from smarttrader_cli.sim.accounts import (
    RAYDIUM_AMM,
    known_accounts,
    mint_bytes,
    program_address,
    wallet_key,
)

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDT = "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"
QUOTES = (SOL, USDC, USDT)
HOUR = 3600
DAY = 24 * HOUR
MIN_WALLETS = 12  # room for at least one wallet of every kind
# Wallet kinds: `truth()` lists each; `labels()` names losing and retail wallets "ordinary".
WALLET_KINDS = ("smart", "losing", "bot", "retail", "sniper", "distributor", "faded")
SMART_TRADES_PER_DAY = 15
MIN_LAUNCHED = 4  # tokens launched inside the history: what snipers buy at their first trade
LAUNCH_DAYS_AGO = (7, 24)  # launches fall this many days before the market's "now"

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_CHUNK = 58**10


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana addresses and signatures use."""
    if len(data) in (32, 64):  # addresses and signatures: solders' encoder, 20x faster
        return str(Pubkey(data) if len(data) == 32 else Signature(data))
    n = int.from_bytes(data, "big")
    out = []
    while n:  # ten digits per big-int division: the small ones are cheap
        n, chunk = divmod(n, _B58_CHUNK)
        for _ in range(10):
            chunk, r = divmod(chunk, 58)
            out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out)).lstrip("1")


def digest(*parts: object, size: int = 32) -> bytes:
    """A stable hash of the parts (sha512 truncated to `size` bytes)."""
    return hashlib.sha512("\x1f".join(map(str, parts)).encode()).digest()[:size]


def rng_for(*parts: object) -> random.Random:
    """A deterministic random generator for one named thing."""
    return random.Random(int.from_bytes(digest(*parts, size=8), "big"))


def address(seed: int, *parts: object) -> str:
    """A deterministic 32-byte base58 address."""
    return b58encode(digest(seed, "addr", *parts, size=32))


@dataclass(frozen=True)
class SimSettings:
    """Size, seed and behaviour of one simulated market and its server."""

    seed: int = 7
    wallets: int = 200
    tokens: int = 20
    trades: int = 50_000  # approximate total over all wallets
    rate_limit: float = 0.0  # BirdEye requests per second; 0 = unlimited
    fault_rate: float = 0.0  # share of BirdEye requests answered with a fault
    fault_delay_seconds: float = 3.0  # how long a "slow" fault stalls (past the client timeout)
    outage_after_requests: int = 0  # after this many BirdEye requests, answer 503; 0 = never
    malformed_rate: float = 0.002  # extra malformed records in trade histories, per trade
    history_days: int = 40  # trades span this many days before end_time
    end_time: int | None = None  # unix seconds of the market's "now"; default: this hour
    birdeye_api_key: str | None = None  # when set, X-API-KEY must match
    helius_api_key: str | None = None  # when set, ?api-key= must match
    quirks: bool = True  # real-payload quirks (API_CONTRACTS.md); False = the documented shapes
    denied_paths: tuple[str, ...] = ()  # BirdEye paths outside the key's plan: answered 403

    def resolved_end_time(self) -> int:
        """The market's "now": `end_time`, or the current time floored to the hour."""
        if self.end_time is not None:
            return int(self.end_time)
        return int(time.time()) // HOUR * HOUR


@dataclass
class SimToken:
    """A token of the market with an hourly price path."""

    index: int
    address: str
    symbol: str
    name: str
    decimals: int
    kind: str  # quote, healthy, small, pump
    prices: list[float] = field(repr=False)
    supply: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict, repr=False)
    launch_time: int | None = None  # its first trade, snipers' buys; None: before the history

    def price_at_hour(self, hour: int) -> float:
        """Price in USD during hour `hour` of the history (clamped to the path)."""
        return self.prices[max(0, min(len(self.prices) - 1, hour))]


@dataclass
class SimWallet:
    """A wallet of the market: its role, the tokens it trades, its size of history."""

    index: int
    address: str
    kind: str  # one of WALLET_KINDS
    tokens: list[int]  # token indexes, the first is its main (listed) token
    trade_target: int


class Market:
    """Tokens, wallets and holders of one seeded market."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.seed = settings.seed
        self.end_time = settings.resolved_end_time()
        self.hours = max(48, settings.history_days * 24)
        # Hours on the epoch grid, so a price series of any interval (1m ... 1D) sees one
        # price per hour, exactly the one trades and truth use.
        self.start_time = self.end_time // HOUR * HOUR - self.hours * HOUR
        self.tokens: list[SimToken] = []
        self._build_tokens()
        self._plan_launches()
        self.by_address = {t.address: t for t in self.tokens}
        self._accounts: dict[int, list[tuple[str, str]]] = {}
        self.wallets: list[SimWallet] = []
        self._build_wallets()
        self.wallet_by_address = {w.address: w for w in self.wallets}

    # --- tokens -----------------------------------------------------------

    def _build_tokens(self) -> None:
        n_hours = self.hours
        sol_rng = rng_for(self.seed, "sol-path")
        sol = _walk(sol_rng, 150.0, n_hours, sigma=0.008)
        self.tokens.append(SimToken(0, SOL, "SOL", "Wrapped SOL", 9, "quote", sol))
        self.tokens.append(SimToken(1, USDC, "USDC", "USD Coin", 6, "quote", [1.0] * n_hours))
        self.tokens.append(SimToken(2, USDT, "USDT", "Tether USD", 6, "quote", [1.0] * n_hours))
        n = max(3, self.settings.tokens)
        n_pump = max(1, n // 4)
        n_small = 1 if n >= 6 else 0
        for i in range(n):
            rng = rng_for(self.seed, "token", i)
            kind = (
                "pump"
                if i >= n - n_pump
                else "small"
                if i == n - n_pump - 1 and n_small
                else "healthy"
            )
            if kind == "pump":
                prices = _pump_path(rng, n_hours)
                decimals = 6
            else:
                prices = _walk(rng, 10 ** rng.uniform(-4, 1.5), n_hours, sigma=0.02)
                decimals = rng.choice((6, 9))
            symbol = _symbol(rng)
            token = SimToken(
                len(self.tokens),
                address(self.seed, "token", i),
                symbol,
                f"{symbol.title()} Token",
                decimals,
                kind,
                prices,
            )
            token.metrics = self._token_metrics(token, rng)
            self.tokens.append(token)
        for quote in self.tokens[:3]:
            quote.supply = 1e9
            quote.metrics = self._token_metrics(quote, rng_for(self.seed, "quote", quote.symbol))

    def _token_metrics(self, token: SimToken, rng: random.Random) -> dict[str, Any]:
        price = token.prices[-1]
        day_ago = token.prices[-25]
        if token.kind == "pump":
            market_cap = price * 1e9
            liquidity = rng.uniform(2_000, 30_000)
            holders = rng.randint(150, 2_000)
        elif token.kind == "small":
            market_cap = rng.uniform(2e5, 8e5)
            liquidity = rng.uniform(20_000, 80_000)
            holders = rng.randint(100, 600)
        else:
            market_cap = 10 ** rng.uniform(6.5, 9.3)
            liquidity = max(150_000.0, market_cap * rng.uniform(0.02, 0.1))
            holders = rng.randint(1_500, 90_000)
        token.supply = market_cap / price
        volume = liquidity * rng.uniform(0.4, 3.0)
        trades_24h = max(20, int(volume / rng.uniform(150, 1500)))
        buys = int(trades_24h * rng.uniform(0.4, 0.6))
        return {
            "address": token.address,
            "name": token.name,
            "symbol": token.symbol,
            "decimals": token.decimals,
            "logo_uri": f"https://sim.invalid/logo/{token.symbol.lower()}.png",
            "market_cap": round(market_cap, 2),
            "fdv": round(market_cap * rng.uniform(1.0, 1.3), 2),
            "liquidity": round(liquidity, 2),
            "price": price,
            "price_change_24h_percent": round((price / day_ago - 1) * 100, 4),
            "volume_24h_usd": round(volume, 2),
            "volume_24h_change_percent": round(rng.uniform(-60, 120), 4),
            "trade_24h_count": trades_24h,
            "buy_24h": buys,
            "sell_24h": trades_24h - buys,
            "unique_wallet_24h": max(5, trades_24h // rng.randint(3, 12)),
            "holder": holders,
            "last_trade_unix_time": self.end_time - rng.randint(0, 300),
            "recent_listing_time": self.start_time - rng.randint(86_400, 86_400 * 400),
        }

    def _plan_launches(self) -> None:
        """Launch the last healthy tokens inside the history, so their first trade is seen.

        A third of the traded tokens (at least MIN_LAUNCHED when there are that many healthy
        ones) launch 7 to 24 days before "now": inside a 30-day lookback, with a week of
        trading after. Nobody but snipers trades a token in its launch hour.
        """
        healthy = [t for t in self.tokens if t.kind == "healthy"]
        traded = sum(t.kind != "quote" for t in self.tokens)
        count = min(len(healthy), max(MIN_LAUNCHED, traded // 3))
        rng = rng_for(self.seed, "launches")
        latest = max(1, self.hours - LAUNCH_DAYS_AGO[0] * 24)
        earliest = min(latest, max(1, self.hours - LAUNCH_DAYS_AGO[1] * 24))
        for token in healthy[len(healthy) - count :]:
            hour = rng.randint(earliest, latest)
            token.launch_time = self.start_time + hour * HOUR + rng.randint(0, 1800)
            token.metrics["recent_listing_time"] = token.launch_time

    def first_hour(self, token_index: int) -> int:
        """The first hour of the history anyone but a sniper may trade the token in."""
        launch = self.tokens[token_index].launch_time
        return 0 if launch is None else self.hour_of(launch) + 1

    @cached_property
    def launched_tokens(self) -> list[SimToken]:
        """Tokens launched inside the history, by launch time."""
        launched = [t for t in self.tokens if t.launch_time is not None]
        return sorted(launched, key=lambda t: (t.launch_time or 0, t.index))

    @cached_property
    def traded_tokens(self) -> list[SimToken]:
        """Tokens wallets trade (every non-quote token)."""
        return [t for t in self.tokens if t.kind != "quote"]

    @cached_property
    def listed_tokens(self) -> list[SimToken]:
        """Healthy tokens: those that pass the default token filters."""
        return [t for t in self.tokens if t.kind == "healthy"]

    def price(self, token_index: int, unix_time: int) -> float:
        """USD price of a token at a time inside the history."""
        return self.tokens[token_index].price_at_hour(self.hour_of(unix_time))

    def hour_of(self, unix_time: int) -> int:
        """Hour of the history a time falls in (may lie outside it: prices clamp)."""
        return (unix_time - self.start_time) // HOUR

    def price_of(self, mint: str, unix_time: int) -> float | None:
        """USD price of a mint at a time (None for a mint the market does not know)."""
        token = self.by_address.get(mint)
        return None if token is None else token.price_at_hour(self.hour_of(unix_time))

    def current_time(self, token: SimToken) -> int:
        """When the token last traded: its current price's update time."""
        return int(token.metrics.get("last_trade_unix_time", self.end_time))

    # --- wallets ----------------------------------------------------------

    def _build_wallets(self) -> None:
        n = max(MIN_WALLETS, self.settings.wallets)
        counts = {
            "smart": max(2, round(n * 0.05)),
            "losing": max(3, round(n * 0.35)),
            "bot": max(1, round(n * 0.02)),
            "sniper": max(2, round(n * 0.02)),
            "distributor": max(1, round(n * 0.02)),
            "faded": max(1, round(n * 0.03)),
        }
        kinds = [kind for kind, k in counts.items() for _ in range(k)]
        kinds += ["retail"] * (n - len(kinds))
        rng_for(self.seed, "wallet-kinds").shuffle(kinds)
        n_bots = counts["bot"]
        total = max(n * 6, self.settings.trades)
        bot_share = 0.5 * total / n_bots
        rest_share = 0.5 * total / max(1, n - n_bots)
        listed = [t.index for t in self.listed_tokens] or [t.index for t in self.traded_tokens]
        pumps = [t.index for t in self.traded_tokens if t.kind == "pump"]
        others = [t.index for t in self.traded_tokens]
        launched = [t.index for t in self.launched_tokens]
        snipers = 0
        for i, kind in enumerate(kinds):
            rng = rng_for(self.seed, "wallet", i)
            main = listed[i % len(listed)]
            extra = rng.sample(others, k=min(len(others), rng.randint(1, 4)))
            if kind in ("smart", "losing", "faded") and pumps:
                extra.append(rng.choice(pumps))
            if kind == "sniper" and launched:
                # every launch, the main (held) one rotating between snipers
                main, extra = launched[snipers % len(launched)], launched
                snipers += 1
            elif kind == "distributor":
                extra = extra[:1]
            tokens = [main] + [t for t in dict.fromkeys(extra) if t != main]
            if kind == "bot":
                target = int(bot_share * rng.uniform(0.8, 1.2))
            elif kind == "sniper":
                target = 3 * len(tokens)
            elif kind == "distributor":
                target = rng.randint(12, 30)
            else:
                target = int(rest_share * rng.lognormvariate(0, 0.4))
            if kind in ("smart", "faded"):  # planted smart wallets trade < 20 times a day
                target = min(target, SMART_TRADES_PER_DAY * self.hours // 24)
            secret = digest(self.seed, "wallet-keypair", i, size=32)
            self.wallets.append(SimWallet(i, wallet_key(secret), kind, tokens, max(6, target)))

    def wallets_of(self, kind: str) -> list[str]:
        """Addresses of the wallets of one role, in market order."""
        return [w.address for w in self.wallets if w.kind == kind]

    def accounts_of(self, token: SimToken) -> list[tuple[str, str]]:
        """(label, address) of the token's holders that never trade: pool, vault, exchange, burn.

        Pool and vault are program-derived from the mint (off the curve, as on chain); the
        exchange and burn accounts come from the known-accounts list, shared by all tokens.
        """
        found = self._accounts.get(token.index)
        if found is None:
            mint = mint_bytes(token.address)
            found = [
                ("pool", program_address(RAYDIUM_AMM, b"pool", mint)),
                ("pool", program_address(RAYDIUM_AMM, b"vault", mint)),
            ]
            for label in ("exchange", "burn"):
                listed = known_accounts(label)
                if listed:
                    found.append((label, listed[token.index % len(listed)]))
            self._accounts[token.index] = found
        return found

    def truth(self) -> dict[str, Any]:
        """What was planted: wallets by role, the accounts that never trade, token roles and
        security facts (sim/security_api.py)."""
        from smarttrader_cli.sim import security_api

        accounts: dict[str, list[str]] = {"pool": [], "exchange": [], "burn": []}
        for token in self.tokens:
            for label, account in self.accounts_of(token):
                if account not in accounts[label]:
                    accounts[label].append(account)
        return {
            "seed": self.seed,
            "end_time": self.end_time,
            "start_time": self.start_time,
            **{f"{kind}_wallets": self.wallets_of(kind) for kind in WALLET_KINDS},
            **{f"{label}_accounts": found for label, found in accounts.items()},
            "tokens": {t.address: t.kind for t in self.tokens},
            "launches": {t.address: t.launch_time for t in self.launched_tokens},
            "latest_prices": {t.address: t.prices[-1] for t in self.tokens},
            "token_security": {
                row.pop("token_address"): row for row in security_api.security_truth(self)
            },
        }

    def labels(self) -> dict[str, str]:
        """Every planted address and its label: smart, faded, bot, sniper, distributor, pool,
        exchange, burn or ordinary (losing and retail wallets)."""
        out = {
            w.address: "ordinary" if w.kind in ("losing", "retail") else w.kind
            for w in self.wallets
        }
        for token in self.tokens:
            for label, account in self.accounts_of(token):
                out.setdefault(account, label)
        return out

    # --- holders ----------------------------------------------------------

    def holders(self, token_address: str) -> list[dict[str, Any]]:
        """Holders of a token, largest first, in the BirdEye v3 holder item shape."""
        token = self.by_address.get(token_address)
        if token is None:
            return []
        rng = rng_for(self.seed, "holders", token.index)
        shares = {"pool": (0.03, 0.15), "exchange": (0.01, 0.05), "burn": (0.002, 0.02)}
        rows: list[tuple[float, str]] = [
            (rng.uniform(*shares[label]), account) for label, account in self.accounts_of(token)
        ]
        for w in self.wallets:
            if token.index not in w.tokens:
                continue
            wr = rng_for(self.seed, "holding", token.index, w.index)
            main = w.tokens[0] == token.index
            if main and w.kind == "distributor":
                share = wr.uniform(0.02, 0.05)  # what it received and sells off
            elif main and w.kind != "retail":
                share = wr.uniform(0.01, 0.03)
            elif main:
                share = wr.uniform(0.002, 0.009)
            else:
                share = wr.uniform(0.0006, 0.002)
            rows.append((share, w.address))
        rows.sort(key=lambda r: (-r[0], r[1]))
        items = []
        for share, owner in rows:
            raw = int(share * token.supply * 10**token.decimals)
            items.append(
                {
                    "amount": str(raw),
                    "decimals": token.decimals,
                    "mint": token.address,
                    "owner": owner,
                    "token_account": address(self.seed, "ata", owner, token.address),
                    "ui_amount": raw / 10**token.decimals,
                    "is_scaled_ui_token": False,
                    "multiplier": None,
                }
            )
        return items


def _walk(rng: random.Random, start: float, n: int, sigma: float) -> list[float]:
    """A log-normal random walk with mild mean reversion."""
    out, log_p, anchor = [], math.log(start), math.log(start)
    for _ in range(n):
        log_p += rng.gauss(0, sigma) - 0.01 * (log_p - anchor)
        out.append(math.exp(log_p))
    return out


def _pump_path(rng: random.Random, n: int) -> list[float]:
    """A token that pumps 8-30x over one to three days, then dies within hours."""
    p0 = 10 ** rng.uniform(-6, -3)
    pump_at = int(n * rng.uniform(0.15, 0.55))
    rise = rng.randint(24, 72)
    peak = p0 * rng.uniform(8, 30)
    floor = peak * rng.uniform(0.01, 0.05)
    out, p = [], p0
    for h in range(n):
        if h < pump_at:
            p *= math.exp(rng.gauss(0, 0.01))
        elif h < pump_at + rise:
            p = p0 * (peak / p0) ** ((h - pump_at + 1) / rise) * math.exp(rng.gauss(0, 0.02))
        elif h < pump_at + rise + 6:
            p = peak * (floor / peak) ** ((h - pump_at - rise + 1) / 6)
        else:
            p *= math.exp(rng.gauss(-0.002, 0.02))
        out.append(p)
    return out


def _symbol(rng: random.Random) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(rng.choice(letters) for _ in range(rng.randint(3, 5)))
