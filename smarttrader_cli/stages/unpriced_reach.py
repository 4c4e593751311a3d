"""Which stored unpriced legs a `st silver webhooks` run values again: those a change since
silver.webhook_unpriced was written can reach, not every unpriced event of the lookback.

With each commit the table records what its legs were valued with (as `txn`s): the
bronze.token_prices version the run's price book read (a cursor, lake/changes.py) and a
fingerprint of the rest of the valuation (the latest snapshot prices, the quote assets,
stablecoins, staleness, SOL dust, the price table's id). A stored event's valuation can
change only when
- bronze.token_prices gained a point of one of its tokens within `max_staleness_seconds`
  of its block time (a price is the nearest point within that, `PriceBook.price_at`),
- one of its wallets' smart flag differs from the current list (those wallets alone),
- the fingerprint changed: a snapshot, the config (every stored event, as before).
The price table's commits after the cursor must only have added rows (appends, merges
that delete nothing, compactions); otherwise (a delete, an overwrite, the log expired or
no cursor yet) every stored event is valued again.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from smarttrader_cli.lake.tables import TOKEN_PRICES

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.lake.store import Lake
    from smarttrader_cli.stages.silver_webhooks import Valuation

READER = "silver.webhooks/unpriced"
FINGERPRINT = f"{READER}/valuation"


def _prices_app_id(snapshot: DeltaTable) -> str:
    from smarttrader_cli.lake.changes import cursor_app_id, table_id

    return cursor_app_id(READER, TOKEN_PRICES, table_id(snapshot))


def fingerprint(valuation: Valuation) -> int:
    """What, besides the price points, the stored valuations depend on, as a `txn` version."""
    from smarttrader_cli.lake.changes import table_id

    book = valuation.book
    state = {
        "snapshot": sorted(valuation.snapshot.items()),
        "quotes": sorted(valuation.quote_assets),
        "stablecoins": sorted(book.stablecoins),
        "staleness": book.max_staleness_seconds,
        "sol_dust": valuation.sol_dust_lamports,
        "prices": None if book.read_from is None else table_id(book.read_from),
    }
    digest = hashlib.blake2b(orjson.dumps(state), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # a txn version is a signed 64-bit integer


def marks(valuation: Valuation) -> list[tuple[str, int]]:
    """The `txn`s a commit of the table records: what its legs are valued with."""
    found = [(FINGERPRINT, fingerprint(valuation))]
    if valuation.book.read_from is not None:
        snapshot = valuation.book.read_from
        found.append((_prices_app_id(snapshot), snapshot.version()))
    return found


def moved(companion: DeltaTable | None, marks: list[tuple[str, int]]) -> bool:
    """Whether the table must be written again though the run wrote no legs: it does not
    describe silver (None), or what its legs are valued with moved on (else every later
    run would look at the same changes again, or value every event again)."""
    return companion is None or any(companion.transaction_version(a) != v for a, v in marks)


def reached(
    lake: Lake, companion: DeltaTable | None, rows: pa.Table, valuation: Valuation, smart: set[str]
) -> tuple[pa.Table, str]:
    """The legs of `rows` (stored unpriced events, as of `companion`; None: read from silver)
    whose events a change can reach, and which changes were looked at (or why all)."""
    from smarttrader_cli.lake.changes import ChangesUnavailable, added_since, rows_only_added

    if companion is None:
        return rows, "all (read from silver)"
    if companion.transaction_version(FINGERPRINT) != fingerprint(valuation):
        return rows, "all (the snapshot or the valuation config changed)"
    prices = valuation.book.read_from
    flipped = pc.not_equal(
        rows.column("is_smart_wallet"),
        pc.is_in(rows.column("wallet"), pa.array(sorted(smart), pa.string())),
    )
    hit = [rows.filter(pc.fill_null(flipped, True)).column("signature")]
    why = "smart flags"
    if prices is not None:
        after = companion.transaction_version(_prices_app_id(prices))
        if after is None:
            return rows, f"all ({TOKEN_PRICES.name} has no cursor in the table)"
        try:
            removed = rows_only_added(lake, TOKEN_PRICES, prices, after)
            changes = added_since(lake, TOKEN_PRICES, prices, after)
        except ChangesUnavailable as exc:
            return rows, f"all ({exc})"
        if removed is not None:
            return rows, f"all ({removed})"
        schema = pa.schema(prices.schema().to_arrow())
        points = changes.dataset(lake, TOKEN_PRICES, schema).to_table(
            columns=["token_address", "unix_time"]
        )
        hit.append(_near(rows, points, valuation.book.max_staleness_seconds))
        why = f"smart flags, {points.num_rows} price points after version {after}"
    signatures = pc.unique(pa.chunked_array([c for h in hit for c in h.chunks], pa.string()))
    return rows.filter(pc.is_in(rows.column("signature"), signatures)), why


def _canonical(tokens: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    from smarttrader_cli.stages.prices import NATIVE_SOL, WSOL

    return pc.if_else(pc.equal(tokens, NATIVE_SOL), WSOL, tokens)


def _spans(points: pa.Table, reach: int) -> pa.Table:
    """The new points as (token, low, high) unix-second spans they can price: one per run
    of points closer than twice `reach`, so a late point far from the others spans alone."""
    tokens = _canonical(points.column("token_address")).to_pylist()
    found: dict[str, list[list[int]]] = {}
    for token, at in sorted(zip(tokens, points.column("unix_time").to_pylist(), strict=True)):
        if token is None or at is None:
            continue
        spans = found.setdefault(token, [])
        if spans and at - reach <= spans[-1][1]:
            spans[-1][1] = at + reach
        else:
            spans.append([at - reach, at + reach])
    rows = [(token, low, high) for token, spans in found.items() for low, high in spans]
    return pa.table(
        {
            "token": pa.array([r[0] for r in rows], pa.string()),
            "low": pa.array([r[1] * 10**6 for r in rows], pa.int64()),
            "high": pa.array([r[2] * 10**6 for r in rows], pa.int64()),
        }
    )


def _near(rows: pa.Table, points: pa.Table, staleness: int) -> pa.ChunkedArray:
    """The signatures of the legs of `rows` with a point of their token in `points` within
    `staleness` seconds of their block time (a second wider each way: block times are
    compared in whole seconds)."""
    if not points.num_rows or not rows.num_rows:
        return pa.chunked_array([], pa.string())
    legs = pa.table(
        {
            "signature": rows.column("signature"),
            "token": _canonical(rows.column("token_address")),
            "at": pc.cast(rows.column("event_time"), pa.int64()),  # microseconds
        }
    ).join(_spans(points, staleness + 1), "token", join_type="inner")
    inside = pc.and_(
        pc.greater_equal(legs["at"], legs["low"]), pc.less_equal(legs["at"], legs["high"])
    )
    return legs.filter(pc.fill_null(inside, True)).column("signature")
