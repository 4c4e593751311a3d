"""Per-wallet swap histories, generated deterministically on demand.

A wallet's history depends only on the market seed and the wallet, so the server
can answer any page of any wallet without keeping every trade in memory: a small
LRU cache holds the histories being paged through.

How each swap is reported follows real pages (API_CONTRACTS.md §1-7) unless the
settings turn quirks off: source names from the real list, `inner_ins_index` null on
top-level swaps (about 48 % of items), openbook_v2 swaps split into 2-4 fills of one tx
with no `ins_index`, string amounts on meteora_dlmm, meteora_damm_v2 and pump_dot_fun,
prices null on 1 % of legs; planted malformed items at `malformed_rate` either way.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import NamedTuple

from smarttrader_cli.sim.market import HOUR, Market, SimWallet, b58encode, digest, rng_for

# Trade flags: response variants, and planted malformed records.
AMOUNT_AS_STRING = 1  # raw amounts as strings (meteora_dlmm, meteora_damm_v2, pump_dot_fun)
FROM_PRICE_NULL = 2  # price null, nearest_price set
TO_PRICE_NULL = 4
FROM_UNPRICED = 8  # price and nearest_price both null
TO_UNPRICED = 16
MALFORMED = 32
BASE_IS_FROM = 64

# Source names as BirdEye sends them, weighted roughly as a busy wallet sees them.
# stake_pool is left out: the market has no staked-SOL token.
SOURCE_WEIGHTS = {
    "raydium": 16,
    "whirlpool": 12,
    "raydium_clamm": 10,
    "meteora_dlmm": 10,
    "pump_amm": 5,
    "jupiterz": 5,
    "raydium_cp": 5,
    "lifinity": 4,
    "meteora_damm_v2": 4,
    "raydium_launchlab": 3,
    "meteora": 3,
    "solfi": 3,
    "openbook_v2": 2,
    "orca": 2,
    "phoenix": 2,
    "stabble": 1,
    "1intro": 1,
    "cropper_dlmm": 1,
    "guacamole": 1,
    "fluxbeam": 1,
    "bonkswap": 1,
    "zerofi": 1,
}
SOURCES = tuple(SOURCE_WEIGHTS)
_WEIGHTS = tuple(SOURCE_WEIGHTS.values())
PUMP_SOURCES = ("pump_amm", "pump_dot_fun")  # where pump tokens trade
TIDY_SOURCES = ("raydium", "orca", "jupiter", "meteora", "lifinity")  # quirks off
# Sources whose swaps are mostly top-level instructions: `inner_ins_index` null.
TOP_LEVEL_SOURCES = frozenset(
    (
        "raydium",
        "whirlpool",
        "pump_amm",
        "raydium_clamm",
        "jupiterz",
        "raydium_launchlab",
        "lifinity",
    )
)
TOP_LEVEL_SHARE = 0.74  # of those sources' swaps; with openbook_v2, about 48 % of items
STRING_AMOUNT_SOURCES = frozenset(("meteora_dlmm", "meteora_damm_v2", "pump_dot_fun"))
OPENBOOK = "openbook_v2"  # fills: no ins_index, null inner_ins_index, 2-4 per tx, float amounts
PRICE_NULL_RATE = 0.01  # per leg: price null, nearest_price set
UNPRICED_RATE = 0.005  # per retail or bot swap: one leg with no price at all
BOT_DAYS = 28  # bots trade in the last 28 days of the history: inside a 30-day lookback


class Trade(NamedTuple):
    """One swap: what the wallet gave up (from) and what it received (to).

    `ins_index` is None on openbook_v2 fills (BirdEye sends no key), `inner_ins_index`
    None on top-level swaps; `fill` tells the fills of one openbook tx apart (it is not
    served: consumers must key such items on what they hold).
    """

    t: int
    tx_hash: str
    ins_index: int | None
    inner_ins_index: int | None
    from_token: int
    from_raw: int
    to_token: int
    to_raw: int
    source: str
    flags: int
    fill: int = 0


def order_key(tr: Trade) -> tuple[int, str, int, int, int]:
    """Newest first, then by position inside the transaction."""
    ins = -1 if tr.ins_index is None else tr.ins_index
    inner = -1 if tr.inner_ins_index is None else tr.inner_ins_index
    return (-tr.t, tr.tx_hash, ins, inner, tr.fill)


class _TxSlots:
    """Instruction positions already used in one transaction, so every swap keys apart."""

    def __init__(self, router_ins: int) -> None:
        self.router_ins = router_ins  # the aggregator instruction inner swaps hang under
        self.next_inner = 0
        self.top = {router_ins}
        self.fills = 0

    def top_level(self) -> int:
        ins = max(self.top) + 1
        self.top.add(ins)
        return ins

    def inner(self) -> int:
        self.next_inner += 1
        return self.next_inner - 1


class _Generator:
    """Builds one wallet's history from round trips chosen by its role.

    `rng` drives what the wallet trades (the economics); `q` drives how BirdEye reports
    it (sources, positions, fills, variants), so turning quirks off keeps the same trades.
    """

    def __init__(self, market: Market, wallet: SimWallet) -> None:
        self.m = market
        self.w = wallet
        self.quirks = market.settings.quirks
        self.rng = rng_for(market.seed, "trades", wallet.address)
        self.q = rng_for(market.seed, "trade-quirks", wallet.address)
        self.trades: list[Trade] = []
        self.swaps = 0  # economic swaps (an openbook swap of three fills counts once)
        self.counter = 0
        self.slots = _TxSlots(0)
        self._active_days: list[int] | None = None
        self.faded_trips = 0

    def tx_hash(self) -> str:
        self.counter += 1
        return b58encode(digest(self.m.seed, "tx", self.w.address, self.counter, size=64))

    def time_in(self, hour: int) -> int:
        return self.m.start_time + hour * HOUR + self.rng.randint(0, HOUR - 1)

    def price(self, token: int, hour: int) -> float:
        return self.m.tokens[token].price_at_hour(hour)

    def swap(
        self,
        t: int,
        from_token: int,
        from_ui: float,
        to_token: int,
        to_ui: float,
        tx: str | None = None,
    ) -> str:
        """Record one swap (a new tx unless `tx` is given); returns its tx hash."""
        tokens = self.m.tokens
        from_raw = max(1, round(from_ui * 10 ** tokens[from_token].decimals))
        to_raw = max(1, round(to_ui * 10 ** tokens[to_token].decimals))
        if tx is None:
            tx = self.tx_hash()
            self.slots = _TxSlots(self.q.randint(0, 4))
        self.swaps += 1
        source = self.pick_source(from_token, to_token)
        flags = self.pick_flags(source)
        slots, q = self.slots, self.q
        if not self.quirks:
            ins, inner = slots.router_ins, slots.inner()
        elif source == OPENBOOK:
            for f_raw, t_raw in self.fills(from_raw, to_raw):
                fill = slots.fills
                slots.fills += 1
                self.trades.append(
                    Trade(
                        t, tx, None, None, from_token, f_raw, to_token, t_raw, source, flags, fill
                    )
                )
            return tx
        elif source in TOP_LEVEL_SOURCES and q.random() < TOP_LEVEL_SHARE:
            ins, inner = slots.top_level(), None
        else:
            ins, inner = slots.router_ins, slots.inner()
        self.trades.append(
            Trade(t, tx, ins, inner, from_token, from_raw, to_token, to_raw, source, flags)
        )
        return tx

    def pick_source(self, from_token: int, to_token: int) -> str:
        tokens, q = self.m.tokens, self.q
        pump = tokens[from_token].kind == "pump" or tokens[to_token].kind == "pump"
        if not self.quirks:
            return "pump_amm" if pump else q.choice(TIDY_SOURCES)
        if pump:
            return PUMP_SOURCES[0] if q.random() < 0.6 else PUMP_SOURCES[1]
        return q.choices(SOURCES, _WEIGHTS)[0]

    def pick_flags(self, source: str) -> int:
        q = self.q
        flags = BASE_IS_FROM if q.random() < 0.5 else 0
        if not self.quirks:
            return flags
        if source in STRING_AMOUNT_SOURCES:
            flags |= AMOUNT_AS_STRING
        if q.random() < PRICE_NULL_RATE:
            flags |= FROM_PRICE_NULL
        if q.random() < PRICE_NULL_RATE:
            flags |= TO_PRICE_NULL
        if self.w.kind in ("retail", "bot") and q.random() < UNPRICED_RATE:
            flags |= q.choice((FROM_UNPRICED, TO_UNPRICED))
        return flags

    def fills(self, from_raw: int, to_raw: int) -> list[tuple[int, int]]:
        """Split one swap into 2-4 order-book fills, amounts all different on both legs."""
        q = self.q
        for _ in range(8):
            n = q.randint(2, 4)
            weights = [q.uniform(0.2, 1.0) for _ in range(n)]
            total = sum(weights)
            parts = []
            for raw in (from_raw, to_raw):
                cut = [int(raw * w / total) for w in weights[:-1]]
                parts.append([*cut, raw - sum(cut)])
            if all(min(p) >= 1 and len(set(p)) == n for p in parts):
                return list(zip(parts[0], parts[1], strict=True))
        return [(from_raw, to_raw)]

    def pick_quote(self) -> int:
        r = self.rng.random()
        return 0 if r < 0.7 or self.w.kind == "bot" else 1 if r < 0.95 else 2

    def pick_token(self) -> int:
        w = self.w
        return w.tokens[0] if self.rng.random() < 0.5 else self.rng.choice(w.tokens)

    def phase(self) -> tuple[str, int, int]:
        """How the next position is traded: (like whom, first buy hour, hour sells end by).

        A faded wallet trades like a smart one 8-30 days ago and like a loser in the last
        7 days; every other role trades the same way over the whole history.
        """
        kind, hours = self.w.kind, self.m.hours
        if kind != "faded":
            return (kind if kind in ("smart", "losing", "bot") else "retail"), 0, hours
        recent = max(hours * 2 // 3, hours - 7 * 24)
        self.faded_trips += 1
        if self.faded_trips % 4 != 1:  # the first position and every fourth: this week's loss
            return "smart", max(0, hours - 30 * 24), max(1, min(hours - 8 * 24, recent - 1))
        return "losing", recent, hours

    def plan(self, token: int, mode: str, lo: int, end: int) -> tuple[int, list[int]] | None:
        """Buy hour and sell hours for one position, by role; None if no fit was found.

        The buy falls in [lo, end - 2] and never before the token's first tradable hour,
        the sells before `end`.
        """
        rng = self.rng
        lo = max(lo, self.m.first_hour(token))
        if lo >= end - 2:
            return None
        if mode == "bot":
            h1 = rng.randrange(lo, end - 2)
            return h1, [min(end - 1, h1 + rng.randint(1, 8))]
        if mode == "retail":
            h1 = rng.randrange(lo, end - 2)
            if rng.random() < 0.15:
                return h1, []
            return h1, sorted({min(end - 1, h1 + rng.randint(1, 336)) for _ in range(2)})
        for _ in range(12):
            h1 = rng.randrange(lo, end - 2)
            p1 = self.price(token, h1)
            later = range(h1 + 1, min(end, h1 + 168))
            cands = rng.sample(later, k=min(10, len(later)))
            if mode == "smart":
                fits = sorted(h for h in cands if self.price(token, h) / p1 >= 1.06)
            else:
                if rng.random() < 0.25 and self.price(token, self.m.hours - 1) / p1 <= 0.9:
                    return h1, []  # a loser holding a bag
                fits = sorted(h for h in cands if self.price(token, h) / p1 <= 0.94)
            if fits:
                return h1, sorted(rng.sample(fits, k=min(len(fits), rng.randint(1, 3))))
        return None

    def follow_up(self, token: int, hour: int, mode: str, end: int) -> int | None:
        """An hour to sell a token received in a token-to-token swap, by role."""
        rng = self.rng
        later = range(hour + 1, min(end, hour + 168))
        if not later or hour < self.m.first_hour(token):
            return None
        p = self.price(token, hour)
        for h in rng.sample(later, k=min(10, len(later))):
            ratio = self.price(token, h) / p
            if mode == "retail" or (mode == "smart" and ratio >= 1.03):
                return h
            if mode == "losing" and ratio <= 0.97:
                return h
        return None

    def round_trip(self) -> None:
        rng, kind = self.rng, self.w.kind
        if kind == "bot":
            self.bot_round_trip()
            return
        mode, lo, end = self.phase()
        token, quote = self.pick_token(), self.pick_quote()
        planned = self.plan(token, mode, lo, end)
        if planned is None:
            return
        h1, sells = planned
        size = {
            "smart": rng.uniform(2000, 8000) if kind == "faded" else rng.uniform(300, 3000),
            "losing": rng.uniform(100, 1200) if kind == "faded" else rng.uniform(100, 3000),
        }.get(mode, rng.uniform(50, 2000))
        qty = size / self.price(token, h1)
        t1 = self.time_in(h1)
        hour_end = self.m.start_time + (h1 + 1) * HOUR - 1
        if rng.random() < 0.3:  # bought in two chunks, sometimes two swaps of one tx
            split = rng.uniform(0.3, 0.7)
            qp = self.price(quote, h1)
            tx = self.swap(t1, quote, size * split / qp, token, qty * split)
            if rng.random() < 0.5:
                self.swap(t1, quote, size * (1 - split) / qp, token, qty * (1 - split), tx)
            else:
                t1b = min(hour_end, t1 + rng.randint(5, 600))
                self.swap(t1b, quote, size * (1 - split) / qp, token, qty * (1 - split))
        else:
            self.swap(t1, quote, size / self.price(quote, h1), token, qty)
        if not sells:
            return
        cuts = sorted(rng.random() for _ in range(len(sells) - 1))
        fractions = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
        others = [t for t in self.w.tokens if t != token]
        for h2, frac in zip(sells, fractions, strict=True):
            chunk = qty * frac
            value = chunk * self.price(token, h2)
            t2 = self.time_in(h2)
            if others and rng.random() < 0.12:
                other = rng.choice(others)
                h3 = self.follow_up(other, h2, mode, end)
                if h3 is not None:
                    got = value / self.price(other, h2)
                    self.swap(t2, token, chunk, other, got)
                    back = got * self.price(other, h3) / self.price(quote, h3)
                    self.swap(self.time_in(h3), other, got, quote, back)
                    continue
            self.swap(t2, token, chunk, quote, value / self.price(quote, h2))

    def bot_round_trip(self) -> None:
        """A bot buys on one of its active days and mostly sells within 20 seconds."""
        rng, m = self.rng, self.m
        day = rng.choice(self.active_days)
        h1 = min(m.hours - 1, day * 24 + rng.randrange(24))
        tradable = [t for t in self.w.tokens if m.first_hour(t) <= h1]
        if not tradable:
            return
        token = tradable[0] if rng.random() < 0.5 else rng.choice(tradable)
        t1 = self.time_in(h1)
        qty = rng.uniform(20, 300) / self.price(token, h1)
        self.swap(t1, 0, qty * self.price(token, h1) / self.price(0, h1), token, qty)
        hold = rng.randint(1, 20) if rng.random() < 0.8 else rng.randint(60, 4 * HOUR)
        t2 = min(t1 + hold, m.end_time - 1)
        h2 = m.hour_of(t2)
        self.swap(t2, token, qty, 0, qty * self.price(token, h2) / self.price(0, h2))

    @property
    def active_days(self) -> list[int]:
        """The days a bot trades on: about 200 swaps each (sampled once per wallet).

        Days of the last BOT_DAYS on which one of its tokens already trades.
        """
        if self._active_days is None:
            m = self.m
            days = max(1, m.hours // 24)
            first = min(m.first_hour(t) for t in self.w.tokens) // 24 + 1
            candidates = range(min(days - 1, max(first, days - BOT_DAYS)), days)
            wanted = max(1, min(len(candidates), self.w.trade_target // 200))
            self._active_days = sorted(self.rng.sample(candidates, wanted))
        return self._active_days

    def snipe(self) -> None:
        """Buy each launched token 0-5 s after its launch, sell it within the next 40 minutes."""
        rng, m = self.rng, self.m
        for index in self.w.tokens:
            launch = m.tokens[index].launch_time
            if launch is None:
                continue
            t = launch + rng.randint(0, 5)
            usd = rng.uniform(200, 2000)
            qty = usd / m.price(index, t)
            self.swap(t, 0, usd / m.price(0, t), index, qty)
            parts = [qty] if rng.random() < 0.5 else [qty * 0.5, qty * 0.5]
            for part in parts:
                t += rng.randint(120, 1200)
                self.swap(t, index, part, 0, part * m.price(index, t) / m.price(0, t))

    def distribute(self) -> None:
        """Sell off tokens received without a buy; a few small buys of another token."""
        rng, m, w = self.rng, self.m, self.w
        main = w.tokens[0]
        lo = m.first_hour(main)
        for _ in range(w.trade_target):
            h = rng.randrange(lo, m.hours) if lo < m.hours else m.hours - 1
            usd = rng.uniform(300, 3000)
            token_qty = usd / self.price(main, h)
            self.swap(self.time_in(h), main, token_qty, 0, usd / self.price(0, h))
        for other in w.tokens[1:2]:
            lo = m.first_hour(other)
            for _ in range(2):
                h = rng.randrange(lo, m.hours) if lo < m.hours else m.hours - 1
                usd = rng.uniform(20, 100)
                self.swap(
                    self.time_in(h), 0, usd / self.price(0, h), other, usd / self.price(other, h)
                )

    def airdrop_sell(self) -> None:
        """A sell of tokens the wallet got before the history (or by transfer)."""
        rng = self.rng
        token = rng.choice(self.w.tokens)
        lo = self.m.first_hour(token)
        if lo >= self.m.hours:
            return
        h = rng.randrange(lo, self.m.hours)
        usd = rng.uniform(50, 500)
        self.swap(self.time_in(h), token, usd / self.price(token, h), 0, usd / self.price(0, h))

    def build(self) -> list[Trade]:
        kind, target = self.w.kind, self.w.trade_target
        if kind == "sniper" and self.m.launched_tokens:
            self.snipe()
        elif kind == "distributor":
            self.distribute()
        else:
            if kind != "bot" and self.rng.random() < 0.3:
                self.airdrop_sell()
            attempts = 0
            while self.swaps < target and attempts < target * 4:
                attempts += 1
                self.round_trip()
        self.plant_malformed()
        self.trades.sort(key=order_key)
        return self.trades

    def plant_malformed(self) -> None:
        rate = self.m.settings.malformed_rate
        if rate <= 0:
            return
        extra = []
        for tr in self.trades:
            if self.rng.random() < rate:
                extra.append(tr._replace(tx_hash=self.tx_hash(), flags=tr.flags | MALFORMED))
        self.trades.extend(extra)


class TradeBook:
    """Wallet histories on demand, with a small LRU cache of the ones being paged."""

    def __init__(self, market: Market, cache_size: int = 16) -> None:
        self.market = market
        self.cache_size = cache_size
        self._cache: OrderedDict[str, list[Trade]] = OrderedDict()
        self._lock = Lock()

    def history(self, wallet_address: str) -> list[Trade]:
        """The wallet's swaps, newest first (empty for an unknown or non-trading address)."""
        with self._lock:
            cached = self._cache.get(wallet_address)
            if cached is not None:
                self._cache.move_to_end(wallet_address)
                return cached
        wallet = self.market.wallet_by_address.get(wallet_address)
        trades = _Generator(self.market, wallet).build() if wallet else []
        with self._lock:
            self._cache[wallet_address] = trades
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return trades

    def window(
        self, wallet_address: str, after_time: int | None, before_time: int | None
    ) -> list[Trade]:
        """Swaps with after_time < t < before_time, newest first."""
        trades = self.history(wallet_address)
        if after_time is None and before_time is None:
            return trades
        lo = after_time if after_time is not None else -1
        hi = before_time if before_time is not None else 1 << 62
        return [tr for tr in trades if lo < tr.t < hi]
