"""`st bronze prices`: USD price series of the assets that value real-time legs.

A webhook swap of a token against SOL is worth what its SOL leg was worth at the
event's time, so SOL (and any asset in `prices.assets`) needs a price history in the
lake: this stage fetches it from BirdEye's `/defi/history_price`, continuing from the
newest point the table holds (the first run goes back `prices.lookback_hours`), and
adds the current price from `/defi/multi_price`. Stablecoins need no lookup.

Tokens traded in webhook events that BirdEye's token list does not cover (new pump
tokens, exactly what smart money finds first) get their current price too: the mints
in the balance changes of the events bronze gained since the last run (a cursor in
bronze.token_prices, lake/changes.py; the first run takes those ingested in the lookback),
one `/defi/multi_price` call per 50, so a token-to-token swap of a new token still has a
known price.

`PriceBook` is the reader: the price of an asset at a time, from the nearest point
no further than `prices.max_staleness_seconds` away.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import TOKEN_PRICES
from smarttrader_cli.stages.bronze_common import birdeye, write_rejects
from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    import pyarrow as pa

    from smarttrader_cli.config.schema import PricesConfig
    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.sources.birdeye import Reject
    from smarttrader_cli.sources.records import PriceRecord
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.bronze.prices")

STAGE = "bronze.prices"

WSOL = "So11111111111111111111111111111111111111112"
NATIVE_SOL = "So11111111111111111111111111111111111111111"  # first-funded's name for SOL


def canonical_asset(token_address: str) -> str:
    """Native SOL and wSOL are one asset, priced under the wSOL mint."""
    return WSOL if token_address == NATIVE_SOL else token_address


def stored_state(lake: Lake) -> tuple[dict[str, int], datetime | None]:
    """The newest price time per token, and when the table last got a point (one read)."""
    import pyarrow.compute as pc

    if not lake.exists(TOKEN_PRICES):
        return {}, None
    table = lake.read(TOKEN_PRICES, columns=["token_address", "unix_time", "fetched_at"])
    if not table.num_rows:
        return {}, None
    newest = table.group_by("token_address").aggregate([("unix_time", "max")])
    points = dict(
        zip(
            newest.column("token_address").to_pylist(),
            newest.column("unix_time_max").to_pylist(),
            strict=True,
        )
    )
    return points, pc.max(table.column("fetched_at")).as_py()


def traded_mints(
    lake: Lake, since: datetime, exclude: set[str]
) -> tuple[list[str], tuple[str, int] | None]:
    """Mints whose balances moved in the webhook events bronze gained since this stage's
    cursor (or, without one, in those ingested after `since`), and the cursor to commit.
    """
    import orjson
    import pyarrow as pa
    import pyarrow.dataset as ds

    from smarttrader_cli.lake.changes import since_cursor
    from smarttrader_cli.lake.tables import WEBHOOK_EVENTS

    if not lake.exists(WEBHOOK_EVENTS):
        return [], None
    bronze = lake.table(WEBHOOK_EVENTS)
    new = since_cursor(lake, WEBHOOK_EVENTS, bronze, STAGE, TOKEN_PRICES)
    dataset, flt = new.dataset, None
    if dataset is None:
        (log.info if new.first else log.warning)(
            "%s: the events ingested since %s are read", new.why, since.isoformat()
        )
        dataset = bronze.to_pyarrow_dataset()
        flt = ds.field("ingested_at") > pa.scalar(since, pa.timestamp("us", tz="UTC"))
    mints: set[str] = set()
    for batch in dataset.to_batches(columns=["payload"], filter=flt):
        for payload in batch.column(0).to_pylist():
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            for account in event.get("accountData") or [] if isinstance(event, dict) else []:
                for change in (account or {}).get("tokenBalanceChanges") or []:
                    mint = change.get("mint") if isinstance(change, dict) else None
                    if isinstance(mint, str) and mint and canonical_asset(mint) not in exclude:
                        mints.add(mint)
    return sorted(mints), new.cursor


def _rows(records: list[PriceRecord], source: str, run_id: str) -> pa.Table:
    import pyarrow as pa

    now = datetime.now(UTC)
    return pa.Table.from_pylist(
        [
            {
                "token_address": r.token_address,
                "unix_time": r.unix_time,
                "price_usd": r.price_usd,
                "source": source,
                "fetched_at": now,
                "run_id": run_id,
            }
            for r in records
        ],
        schema=TOKEN_PRICES.schema,
    )


def _args(ctx: StageContext, now: int | None = None) -> dict[str, Any]:
    return {"assets": _assets(ctx.config.prices), "interval": ctx.config.prices.interval}


def _assets(cfg: PricesConfig) -> list[str]:
    return list(dict.fromkeys(canonical_asset(a) for a in cfg.assets))


@stage(STAGE, writes=TOKEN_PRICES.name, command="st bronze prices", prepare=_args)
def run(ctx: StageContext, current: StageRun, now: int | None = None) -> StageResult:
    """Price history of `prices.assets`, current prices of traded tokens → bronze.token_prices."""
    import pyarrow as pa

    from smarttrader_cli.sources.birdeye import MULTI_PRICE, PRICE_HISTORY

    cfg = ctx.config.prices
    assets = _assets(cfg)
    until = int(time.time()) if now is None else now
    newest, previous = stored_state(ctx.lake)
    since = previous - timedelta(minutes=1) if previous else datetime.fromtimestamp(
        until - cfg.lookback_hours * 3600, UTC
    )  # fmt: skip
    excluded = set(assets) | set(cfg.stablecoins)
    excluded |= {canonical_asset(a) for a in ctx.config.pnl.quote_assets}
    tokens, cursor = traded_mints(ctx.lake, since, excluded)

    async def fetch() -> tuple[list[pa.Table], list[Reject]]:
        tables: list[pa.Table] = []
        rejects: list[Reject] = []
        async with birdeye(ctx, current) as client:
            for asset in assets:
                since = newest.get(asset, until - cfg.lookback_hours * 3600 - 1) + 1
                if since <= until:
                    series = await client.price_history(asset, cfg.interval, since, until)
                    current.rows_in += series.items
                    rejects.extend(series.rejects)
                    tables.append(_rows(series.records, PRICE_HISTORY, current.run_id))
            prices = await client.current_prices(assets + tokens)
            current.rows_in += prices.items
            rejects.extend(prices.rejects)
            # A current price holds from its last update until now: both ends are points.
            held = [replace(r, unix_time=until) for r in prices.records if r.unix_time < until]
            tables.append(_rows(prices.records + held, MULTI_PRICE, current.run_id))
        return tables, rejects

    tables, rejects = asyncio.run(fetch())
    rows = pa.concat_tables(tables) if tables else TOKEN_PRICES.schema.empty_table()
    if rows.num_rows:
        merged = ctx.lake.merge(
            TOKEN_PRICES, rows, current.meta, app_transactions=[cursor] if cursor else ()
        )
        current.rows_out = merged.inserted + merged.updated
    new_rejects = write_rejects(ctx.lake, rejects, current)
    log.info("bronze.token_prices: %d points of %d assets", rows.num_rows, len(assets))
    return run_result(
        current,
        rejects=new_rejects,
        assets=len(assets),
        traded_tokens=len(tokens),
        points=rows.num_rows,
    )


@dataclass
class PriceBook:
    """USD prices of assets over time, read from bronze.token_prices.

    A book read `since` a time holds the points from then on: the table grows by every
    run of `st bronze prices`, the runs of `st silver webhooks` value mostly recent events.
    The first price asked for an earlier time (a late event, a full refresh) reads the
    rest, once; either way a price is the one the whole table gives.
    """

    max_staleness_seconds: int
    stablecoins: frozenset[str] = frozenset()
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    source: Lake | None = None  # where the points not read yet are
    loaded_from: int | None = None  # the points before this unix time are not read yet
    # the DeltaTable snapshot first read: every point of its version is in the book
    read_from: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_lake(cls, lake: Lake, config: PricesConfig, since: int | None = None) -> PriceBook:
        """The stored points (from unix time `since` on, when given), grouped by asset."""
        book = cls(config.max_staleness_seconds, frozenset(config.stablecoins))
        if lake.exists(TOKEN_PRICES):
            book.source = lake
            book._read(since)
        return book

    def _read(self, since: int | None) -> None:
        import pyarrow.dataset as ds

        assert self.source is not None
        columns = ["token_address", "unix_time", "price_usd"]
        # File statistics skip the files of older points: the cost follows `since`.
        flt = None if since is None else ds.field("unix_time") >= since
        snapshot = self.source.table(TOKEN_PRICES)
        if self.read_from is None:
            self.read_from = snapshot
        table = snapshot.to_pyarrow_dataset().to_table(columns=columns, filter=flt)
        points: dict[str, list[tuple[int, float]]] = {}
        for token, at, price in zip(*(table.column(c).to_pylist() for c in columns), strict=True):
            if price is not None and price > 0:
                points.setdefault(token, []).append((at, price))
        self.series = {}
        for token, pts in points.items():
            pts.sort()
            self.series[token] = ([t for t, _ in pts], [p for _, p in pts])
        self.loaded_from = since

    def price_at(self, token_address: str, unix_time: int) -> tuple[float | None, str]:
        """(price, source) at a time, or (None, why not)."""
        token = canonical_asset(token_address)
        if token in self.stablecoins:
            return 1.0, "stablecoin"
        if (
            self.loaded_from is not None
            and unix_time - self.max_staleness_seconds < self.loaded_from
        ):
            self._read(None)  # a point usable at this time may be one not read yet
        times, prices = self.series.get(token, ([], []))
        i = bisect.bisect_left(times, unix_time)
        best: tuple[int, float] | None = None
        for j in (i - 1, i):
            if 0 <= j < len(times):
                gap = abs(times[j] - unix_time)
                if best is None or gap < best[0]:
                    best = (gap, prices[j])
        if best is None or best[0] > self.max_staleness_seconds:
            # Only points within the staleness say anything, so the reason does not
            # depend on which older points were read.
            return None, (
                f"no price within {self.max_staleness_seconds} s of the event in "
                "bronze.token_prices (run `st bronze prices`)"
            )
        return best[1], "price_table"
