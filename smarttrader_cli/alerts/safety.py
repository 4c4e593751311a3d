"""The token safety gate: BirdEye's security facts of a token before a buy alert on it.

A buy alert (wallet_buy, confluence) gets a verdict on its token: `passed`, `blocked`
with the reasons, or `unknown` with the reason (the lookup failed, or a fact a rule
needs was null). `alerts.safety.block_unknown` says whether unknown blocks. A blocked
alert is queued `blocked` (outbox.py): never sent, listed by `st alerts list` with its
reasons. Exit alerts are not gated: a smart wallet selling is worth knowing whatever the
token is.

Facts (sources/security.py) are fetched once per token and `alerts.safety.ttl_hours`:
they are cached in `bronze.token_security` (one row per token, with `fetched_at`) and,
for a long-running process holding one `SafetyGate`, in memory. A lookup of several
tokens runs its `/defi/token_security` calls concurrently (one token a call, paced by
the BirdEye client) and asks their liquidity in one `/defi/multi_price` call per 50. A
failed lookup never fails a run: its verdict is unknown, nothing is cached, and one
gate tries the token again only after `alerts.safety.retry_failed_after_seconds`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from smarttrader_cli.alerts.rules import CONFLUENCE, WALLET_BUY
from smarttrader_cli.errors import StError
from smarttrader_cli.lake.tables import TOKEN_SECURITY
from smarttrader_cli.sources.records import RecordError
from smarttrader_cli.sources.security import SecurityFacts

if TYPE_CHECKING:
    import httpx

    from smarttrader_cli.alerts.outbox import Alert
    from smarttrader_cli.config.alerts_schema import AlertSafetyConfig
    from smarttrader_cli.config.schema import BirdeyeConfig, Config
    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.sources.birdeye import BirdeyeClient

log = logging.getLogger("st.alerts")

PASSED, BLOCKED, UNKNOWN = "passed", "blocked", "unknown"
GATED_RULES = (WALLET_BUY, CONFLUENCE)
T = TypeVar("T")


@dataclass(frozen=True)
class Verdict:
    """The gate's verdict on a token: its status, why, and whether it stops the alert."""

    status: str  # passed, blocked, unknown
    reasons: tuple[str, ...] = ()
    blocks: bool = False
    checked_at: datetime | None = None  # when the facts it rests on were fetched

    def describe(self) -> str:
        """One line for an alert's text."""
        if self.status == PASSED:
            return "safety: passed"
        stop = " (not sent)" if self.blocks else ""
        return f"safety: {self.status}{stop}: {'; '.join(self.reasons)}"

    def as_dict(self) -> dict[str, Any]:
        checked = self.checked_at.isoformat() if self.checked_at else None
        return {"verdict": self.status, "reasons": list(self.reasons), "checked_at": checked}


def judge(
    facts: SecurityFacts | None,
    rules: AlertSafetyConfig,
    problems: Sequence[str] = (),
    checked_at: datetime | None = None,
) -> Verdict:
    """The verdict `rules` give on `facts` (None: the lookup failed, `problems` say why).

    A rule broken by a known fact blocks; a rule whose fact is unknown makes the verdict
    unknown unless another rule blocks.
    """
    blocked: list[str] = []
    unknown = list(problems)
    if facts is None:
        unknown = unknown or ["the security lookup failed"]
    elif not facts.known:
        unknown.append("BirdEye has no security facts for the token")
    else:
        if rules.block_mint_authority and facts.mint_authority:
            blocked.append(f"mint authority {facts.mint_authority} (BirdEye ownerAddress)")
        if rules.block_freeze_authority and facts.freeze_authority:
            blocked.append(f"freeze authority {facts.freeze_authority}")
        elif rules.block_freeze_authority and facts.freezeable:
            blocked.append("freezeable (BirdEye freezeable: true)")
        limit = rules.max_top10_holder_share
        share = facts.top10_holder_share
        if limit < 1 and share is None:
            unknown.append("top-10 holder share unknown (null)")
        elif limit < 1 and share is not None and share > limit:
            blocked.append(f"top 10 holders own {share:.0%} (more than {limit:.0%})")
    if rules.min_liquidity_usd > 0 and facts is not None:
        liquidity = facts.liquidity_usd
        if liquidity is None:
            if not problems:
                unknown.append("liquidity unknown (BirdEye priced no pool)")
        elif liquidity < rules.min_liquidity_usd:
            blocked.append(f"liquidity ${liquidity:,.0f} (below ${rules.min_liquidity_usd:,.0f})")
    if blocked:
        return Verdict(BLOCKED, tuple(blocked + unknown), True, checked_at)
    if unknown:
        return Verdict(UNKNOWN, tuple(unknown), rules.block_unknown, checked_at)
    return Verdict(PASSED, (), False, checked_at)


@dataclass
class GateStats:
    """What a gate did: tokens judged from cache or fetched, lookups failed, requests made."""

    cached: int = 0
    fetched: int = 0
    failed: int = 0
    requests: int = 0  # BirdEye requests, with the client's retries and 429s
    retries: int = 0
    rate_limited: int = 0
    passed: int = 0
    blocked: int = 0
    unknown: int = 0


class SafetyGate:
    """Judges the tokens of buy alerts, from cached facts or a BirdEye lookup.

    One per run, or one for the life of a long-running process (its memory then spares
    reading the lake cache again). Not thread-safe.
    """

    def __init__(
        self,
        lake: Lake,
        config: Config,
        api_key: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lake = lake
        self.rules: AlertSafetyConfig = config.alerts.safety
        self.birdeye: BirdeyeConfig = dataclasses.replace(
            config.birdeye,
            max_retries=self.rules.max_retries,
            timeout_seconds=self.rules.timeout_seconds,
        )
        self.api_key = api_key
        self.stats = GateStats()
        self._transport, self._sleep, self._clock = transport, sleep, clock
        self._facts: dict[str, tuple[SecurityFacts, datetime]] = {}
        self._failed: dict[str, float] = {}  # token -> monotonic time of its failed lookup
        self._read_lake = False

    def apply(self, alerts: Iterable[Alert], meta: CommitMeta | None = None) -> list[Alert]:
        """`alerts` with a verdict on each buy alert's token (in `safety` and its text)."""
        alerts = list(alerts)
        if not self.rules.enabled:
            return alerts
        tokens = sorted({a.token_address for a in alerts if a.rule in GATED_RULES})
        verdicts = self.verdicts(tokens, meta)
        return [
            dataclasses.replace(alert, text=f"{alert.text}\n{verdict.describe()}", safety=verdict)
            if (verdict := verdicts.get(alert.token_address)) and alert.rule in GATED_RULES
            else alert
            for alert in alerts
        ]

    def verdicts(self, tokens: Sequence[str], meta: CommitMeta | None = None) -> dict[str, Verdict]:
        """Each token's verdict; facts older than the TTL are fetched (and cached) first."""
        now = self._clock()
        fresh = self._cached(tokens, now)
        retry_after = self.rules.retry_failed_after_seconds
        due: list[str] = []
        looked_up: dict[str, tuple[SecurityFacts | None, list[str]]] = {}
        for token in tokens:
            if token in fresh:
                continue
            failed = self._failed.get(token)
            if failed is not None and time.monotonic() - failed < retry_after:
                looked_up[token] = (None, ["its last lookup failed; it is tried again later"])
            else:
                due.append(token)
        if due:
            looked_up.update(self._lookup(due))
        complete = [f for f, problems in looked_up.values() if f is not None and not problems]
        if complete:
            self._store(complete, now, meta)
        out: dict[str, Verdict] = {}
        for token in tokens:
            if token in fresh:
                cached, fetched_at = fresh[token]
                verdict = judge(cached, self.rules, checked_at=fetched_at)
                self.stats.cached += 1
            else:
                facts, problems = looked_up[token]
                verdict = judge(facts, self.rules, problems, checked_at=now if facts else None)
                if problems:
                    self.stats.failed += 1
                else:
                    self.stats.fetched += 1
            setattr(self.stats, verdict.status, getattr(self.stats, verdict.status) + 1)
            out[token] = verdict
        return out

    # --- the cache ------------------------------------------------------------

    def _cached(
        self, tokens: Sequence[str], now: datetime
    ) -> dict[str, tuple[SecurityFacts, datetime]]:
        """Facts of `tokens` fetched within the TTL: from memory, else the lake (once)."""
        ttl = timedelta(hours=self.rules.ttl_hours)
        if not self._read_lake and any(t not in self._facts for t in tokens):
            self._facts.update(_read_cache(self.lake))
            self._read_lake = True
        return {
            t: self._facts[t] for t in tokens if t in self._facts and now - self._facts[t][1] < ttl
        }

    def _store(
        self, facts: Iterable[SecurityFacts], now: datetime, meta: CommitMeta | None
    ) -> None:
        """Remember the facts and merge them into bronze.token_security (one commit)."""
        import pyarrow as pa

        from smarttrader_cli.lake.store import CommitMeta

        facts = list(facts)
        for f in facts:
            self._facts[f.token_address] = (f, now)
            self._failed.pop(f.token_address, None)
        meta = meta or CommitMeta(f"safety-{now:%Y%m%dT%H%M%S}", "alerts.safety", "")
        rows = [{**dataclasses.asdict(f), "fetched_at": now, "run_id": meta.run_id} for f in facts]
        try:
            self.lake.merge(TOKEN_SECURITY, pa.Table.from_pylist(rows, TOKEN_SECURITY.schema), meta)
        except StError as exc:  # the verdicts stand; the next run fetches them again
            log.warning("cannot cache %d tokens' security facts: %s", len(rows), exc)

    # --- the lookup -----------------------------------------------------------

    def _lookup(self, tokens: list[str]) -> dict[str, tuple[SecurityFacts | None, list[str]]]:
        """Each token's facts (None: the security lookup failed) and what went wrong."""
        started = time.monotonic()
        try:
            found = _run(lambda: self._fetch(tokens))
        except StError as exc:  # e.g. no API key: every token is unknown, said once
            log.warning("safety of %d tokens unknown: security lookup failed: %s", len(tokens), exc)
            self._failed.update(dict.fromkeys(tokens, started))
            return {t: (None, [f"security lookup failed: {exc}"]) for t in tokens}
        for token, (_, problems) in found.items():
            if problems:
                self._failed[token] = started
                log.warning("safety of %s unknown: %s", token, "; ".join(problems))
        return found

    async def _fetch(self, tokens: list[str]) -> dict[str, tuple[SecurityFacts | None, list[str]]]:
        from smarttrader_cli.errors import ApiError
        from smarttrader_cli.sources.birdeye import BirdeyeClient

        kwargs: dict[str, Any] = {"transport": self._transport}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep

        async def liquidities() -> tuple[dict[str, float | None], dict[str, str]]:
            try:
                return await client.liquidities(tokens)
            except ApiError as exc:
                return {}, {t: f"liquidity lookup failed: {exc}" for t in tokens}

        async with BirdeyeClient(self.birdeye, self.api_key, **kwargs) as client:
            try:  # the liquidity call goes out with the security ones, not after them
                securities = asyncio.gather(*(_security(client, t) for t in tokens))
                found, (liquidity, unreadable) = await asyncio.gather(securities, liquidities())
            finally:
                self.stats.requests += client.stats.requests
                self.stats.retries += client.stats.retries
                self.stats.rate_limited += client.stats.rate_limited
        out: dict[str, tuple[SecurityFacts | None, list[str]]] = {}
        for token, (facts, problem) in zip(tokens, found, strict=True):
            problems = [p for p in (problem, unreadable.get(token)) if p]
            if facts is not None:
                facts = dataclasses.replace(facts, liquidity_usd=liquidity.get(token))
            out[token] = (facts, problems)
        return out


async def _security(client: BirdeyeClient, token: str) -> tuple[SecurityFacts | None, str | None]:
    """One token's security facts, or why there are none (never raises an API error)."""
    from smarttrader_cli.errors import ApiError

    try:
        return await client.token_security(token), None
    except (ApiError, RecordError) as exc:
        return None, f"security lookup failed: {exc}"


def _read_cache(lake: Lake) -> dict[str, tuple[SecurityFacts, datetime]]:
    """Every token's cached facts and when they were fetched."""
    if not lake.exists(TOKEN_SECURITY):
        return {}
    names = {f.name for f in dataclasses.fields(SecurityFacts)}
    out = {}
    for row in lake.read(TOKEN_SECURITY).to_pylist():
        if row["fetched_at"] is None:
            continue
        facts = SecurityFacts(**{k: v for k, v in row.items() if k in names})
        out[row["token_address"]] = (facts, row["fetched_at"])
    return out


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to its end from sync code, in a thread of its own when the caller
    is itself inside an event loop (asyncio.run cannot nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="st-safety") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def gate_for(lake: Lake, config: Config) -> SafetyGate | None:
    """A gate with the API key from the environment, or None when the gate is off."""
    from smarttrader_cli.config.loader import Secrets

    if not config.alerts.safety.enabled:
        return None
    return SafetyGate(lake, config, Secrets.from_env().birdeye_api_key)
