"""gold.wallet_flags over a hand-built lake with real dbt-duckdb: each flag, each exclusion."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.context import AppContext
from smarttrader_cli.lake.store import CommitMeta
from smarttrader_cli.lake.tables import WALLET_FLAGS, WALLET_PNL, WALLET_TRADES, WHALE_HOLDERS
from smarttrader_cli.stages import gold
from smarttrader_cli.stages.contract import StageContext, StageResult

pytestmark = pytest.mark.integration

META = CommitMeta("test-run", "test", "hash")
SOL = "So11111111111111111111111111111111111111112"
DAY, HOUR = 86_400, 3_600
T0 = 1_739_926_800  # 2025-02-19 01:00 UTC: every scenario's first day is one UTC day
RAYDIUM_V4 = Pubkey.from_string("675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8")


def key(name: str) -> str:
    """A real wallet address: the public key of a keypair seeded by `name`."""
    return str(Keypair.from_seed(hashlib.sha256(name.encode()).digest()).pubkey())


SMART = key("smart")
LAUNCHERS = [key(f"launcher-{i}") for i in range(6)]
BOT_RATE, BOT_FLIP, BOT_HOLD = key("bot-rate"), key("bot-flip"), key("bot-hold")
SNIPER, DISTRIBUTOR = key("sniper"), key("distributor")
POOL = str(Pubkey.find_program_address([b"pool", b"TOKEN_A"], RAYDIUM_V4)[0])
MALFORMED = "not-a-key-0OIl"
BINANCE = "5tzFkiKscXHK5ZXCGbXZxdw7gTjjD1mBwuoFbhUvuAi9"
INCINERATOR = "1nc1nerator11111111111111111111111111111111"
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKENS = [key(f"token-{i}") for i in range(6)]


class Trades:
    """bronze.wallet_trades rows: buys and sells of a token against SOL at 1 USD a unit."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def swap(self, wallet: str, at: int, side: str, token: str, qty: float = 10.0) -> None:
        give, get = (SOL, token) if side == "buy" else (token, SOL)
        self.rows.append(
            {
                "tx_hash": f"tx{len(self.rows)}",
                "ins_index": 0,
                "inner_ins_index": -1,
                "fill_id": "",
                "wallet_address": wallet,
                "block_unix_time": at,
                "block_number": at,
                "from_token_address": give,
                "from_amount": qty,
                "from_price_usd": 1.0,
                "to_token_address": get,
                "to_amount": qty,
                "to_price_usd": 1.0,
            }
        )


def build_trades() -> Trades:
    t = Trades()
    for launcher, token in zip(LAUNCHERS, TOKENS, strict=True):  # each token's first trade
        t.swap(launcher, T0, "buy", token)
    # smart: buys an hour after launch, sells a day later, a few trades a day
    for i, token in enumerate(TOKENS[:3]):
        t.swap(SMART, T0 + HOUR + i * 60, "buy", token)
        t.swap(SMART, T0 + DAY + i * 60, "sell", token)
    # bot by rate: 60 buys in one day, never sells
    for i in range(60):
        t.swap(BOT_RATE, T0 + 2 * HOUR + i * 600, "buy", TOKENS[0], 1.0)
    # bot by flips: 12 round trips, sold 20 s after the buy, one an hour
    for i in range(12):
        start = T0 + 3 * HOUR + i * HOUR
        t.swap(BOT_FLIP, start, "buy", TOKENS[1])
        t.swap(BOT_FLIP, start + 20, "sell", TOKENS[1])
    # bot by holding: 12 round trips held 90 s (no flip at 30 s), one a day
    for i in range(12):
        start = T0 + 2 * HOUR + i * DAY
        t.swap(BOT_HOLD, start, "buy", TOKENS[2])
        t.swap(BOT_HOLD, start + 90, "sell", TOKENS[2])
    # sniper: first buy 3 s after launch on 4 tokens, sold the next day
    for token in TOKENS[:4]:
        t.swap(SNIPER, T0 + 3, "buy", token)
        t.swap(SNIPER, T0 + DAY, "sell", token)
    # distributor: sells 1000 units it never bought
    t.swap(DISTRIBUTOR, T0 + 5 * HOUR, "sell", TOKENS[5], 1000.0)
    return t


def portfolio(wallet: str, **overrides: Any) -> dict[str, Any]:
    """A silver ALL_TOKENS row that passes the default base filters."""
    row = {
        "wallet_address": wallet,
        "token_address": "ALL_TOKENS",
        "total_pnl": 500.0,
        "realized_pnl": 500.0,
        "unrealized_pnl": 0.0,
        "roi": 0.5,
        "win_rate": 0.8,
        "trade_count": 20,
        "total_bought": 1000.0,
        "total_sold": 1500.0,
        "unmatched_sell_qty": 0.0,
    }
    return {**row, **overrides}


CANDIDATES = [SMART, BOT_FLIP, SNIPER, BINANCE, MALFORMED]


def build_lake(app_ctx: AppContext) -> None:
    lake = app_ctx.lake
    lake.append(WALLET_TRADES, pa.Table.from_pylist(build_trades().rows), META)
    silver = [portfolio(w) for w in CANDIDATES]
    silver += [
        portfolio(DISTRIBUTOR, total_bought=100.0, total_sold=5000.0, total_pnl=20.0),
        # its one token: 990 of the 1000 units sold had no purchase
        portfolio(
            DISTRIBUTOR, token_address=TOKENS[5], total_sold=5000.0, unmatched_sell_qty=990.0
        ),
    ]
    lake.merge(WALLET_PNL, pa.Table.from_pylist(silver), META)
    holders = [POOL, MALFORMED, BINANCE, INCINERATOR, TOKEN_PROGRAM, SMART]
    lake.append(
        WHALE_HOLDERS,
        pa.Table.from_pylist(
            [
                {
                    "token_address": TOKENS[0],
                    "wallet_address": w,
                    "snapshot_at": pa.scalar(T0 * 1_000_000, pa.timestamp("us", tz="UTC")),
                    "holder_rank": i + 1,
                }
                for i, w in enumerate(holders)
            ]
        ),
        META,
    )


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"memory.min_free_mb": 64}


@pytest.fixture
def app_ctx(app_ctx: AppContext) -> AppContext:
    build_lake(app_ctx)
    return app_ctx


def rank(app: AppContext) -> StageResult:
    return gold.rank(StageContext.of(app.loaded, app.lake))


def flags_of(app: AppContext) -> dict[str, dict[str, Any]]:
    return {r["wallet_address"]: r for r in app.lake.read(WALLET_FLAGS).to_pylist()}


def test_each_planted_behaviour_gets_its_flag_and_reason(app_ctx: AppContext) -> None:
    result = rank(app_ctx)
    flags = flags_of(app_ctx)
    expected = {
        SMART: "",
        **dict.fromkeys(LAUNCHERS, ""),
        BOT_RATE: "bot",
        BOT_FLIP: "bot",
        BOT_HOLD: "bot",
        SNIPER: "sniper",
        DISTRIBUTOR: "distributor",
        POOL: "off_curve",
        MALFORMED: "invalid_address",
        BINANCE: "exchange",
        INCINERATOR: "off_curve,burn",
        TOKEN_PROGRAM: "program",
    }
    assert {w: r["flags"] for w, r in flags.items()} == expected
    assert {w for w, r in flags.items() if r["is_flagged"]} == {w for w, f in expected.items() if f}
    assert "60.0 swaps per active day > 50.0" in flags[BOT_RATE]["reasons"]
    assert "12 of 12 sells (1.00) within 30s of a buy" in flags[BOT_FLIP]["reasons"]
    assert "median holding 20s < 120.0s" in flags[BOT_FLIP]["reasons"]
    assert flags[BOT_HOLD]["reasons"] == "bot: median holding 90s < 120.0s over 12 matched sells"
    assert flags[BOT_HOLD]["flip_count"] == 0 and flags[BOT_HOLD]["median_hold_seconds"] == 90
    assert flags[SNIPER]["reasons"].startswith("sniper: first buy within 10s of the first trade")
    assert (flags[SNIPER]["sniped_tokens"], flags[SNIPER]["tokens_bought"]) == (4, 4)
    assert flags[SMART]["sniped_tokens"] == 0 and flags[SMART]["median_hold_seconds"] == DAY - HOUR
    assert flags[DISTRIBUTOR]["basis_coverage"] == pytest.approx(0.01)
    assert "basis coverage 0.01 < 0.5" in flags[DISTRIBUTOR]["reasons"]
    assert flags[MALFORMED]["on_curve"] is None
    assert flags[MALFORMED]["reasons"].startswith("invalid_address: not a base58 public key")
    assert flags[BINANCE]["known_name"] == "Binance 2"
    assert flags[POOL]["is_holder"] and not flags[POOL]["is_trader"]
    assert {r["run_id"] for r in flags.values()} == {result.run_id}
    assert result.details["flagged"] == {
        "bot": 3,
        "sniper": 1,
        "distributor": 1,
        "off_curve": 2,
        "invalid_address": 1,
        "exchange": 1,
        "burn": 1,
        "program": 1,
    }


def test_flagged_wallets_are_not_ranked_by_default(app_ctx: AppContext) -> None:
    result = rank(app_ctx)
    assert [r["wallet_address"] for r in result.records] == [SMART]
    assert result.details["candidates"] == len(CANDIDATES) + 1
    excluded = {w for w, r in flags_of(app_ctx).items() if r["excluded"]}
    assert {BOT_FLIP, SNIPER, BINANCE, MALFORMED, DISTRIBUTOR} <= excluded
    assert SMART not in excluded


def test_exclusion_can_be_switched_off_or_chosen_per_flag(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST_GOLD__EXCLUDE_FLAGGED", "false")
    everyone = AppContext(config_path=app_ctx.config_path)
    assert {r["wallet_address"] for r in rank(everyone).records} == {*CANDIDATES, DISTRIBUTOR}
    assert not any(r["excluded"] for r in flags_of(everyone).values())
    monkeypatch.setenv("ST_GOLD__EXCLUDE_FLAGGED", "true")
    monkeypatch.setenv("ST_GOLD__EXCLUDE_FLAGS", '["bot", "invalid_address"]')
    chosen = AppContext(config_path=app_ctx.config_path)
    ranked = {r["wallet_address"] for r in rank(chosen).records}
    assert ranked == {SMART, SNIPER, BINANCE, DISTRIBUTOR}


def test_thresholds_come_from_the_config(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST_GOLD__CLASSIFY__BOT_MAX_TRADES_PER_DAY", "100")
    monkeypatch.setenv("ST_GOLD__CLASSIFY__SNIPER_MIN_TOKENS", "5")
    monkeypatch.setenv("ST_GOLD__CLASSIFY__BOT_MAX_MEDIAN_HOLD_SECONDS", "60")
    ctx = AppContext(config_path=app_ctx.config_path)
    rank(ctx)
    flags = flags_of(ctx)
    assert flags[BOT_RATE]["flags"] == flags[SNIPER]["flags"] == flags[BOT_HOLD]["flags"] == ""
    assert flags[BOT_FLIP]["flags"] == "bot"  # still flips


def test_a_lake_without_trades_or_holders_is_flagged_from_silver_alone(
    st_config: Any,
) -> None:
    ctx = AppContext(config_path=st_config(**{"memory.min_free_mb": 64}))
    ctx.lake.merge(WALLET_PNL, pa.Table.from_pylist([portfolio(SMART), portfolio("bad")]), META)
    result = rank(ctx)
    assert [r["wallet_address"] for r in result.records] == [SMART]
    flags = flags_of(ctx)
    assert flags["bad"]["flags"] == "invalid_address" and flags[SMART]["swap_count"] == 0


def test_cli_rank_says_how_many_were_flagged(app_ctx: AppContext) -> None:
    result = CliRunner().invoke(
        app,
        ["--config", str(app_ctx.config_path), "gold", "rank", "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert [r["wallet_address"] for r in json.loads(result.stdout)] == [SMART]


def explain(ctx: AppContext, wallet: str, *args: str) -> Any:
    return CliRunner().invoke(
        app,
        ["--config", str(ctx.config_path), "gold", "explain", wallet, *args],
        catch_exceptions=False,
    )


def test_explain_says_why_a_wallet_is_or_is_not_ranked(app_ctx: AppContext) -> None:
    before = explain(app_ctx, SMART)
    assert before.exit_code == 1 and "run `st gold rank` first" in before.stderr
    rank(app_ctx)
    ranked = explain(app_ctx, SMART)
    assert ranked.exit_code == 0, ranked.output
    assert ranked.stdout.splitlines()[1].startswith("  ranked #1 (")
    assert "flags: none" in ranked.stdout and "total_pnl: 500" in ranked.stdout
    assert f"https://birdeye.so/profile/{SMART}?chain=solana" in ranked.stdout
    assert f"https://solscan.io/account/{SMART}" in ranked.stdout
    bot = json.loads(explain(app_ctx, BOT_FLIP, "--json").stdout)
    assert bot["status"] == "excluded" and bot["rank"] is None
    assert bot["rule"].startswith("excluded by its flags bot (gold.exclude_flags): bot: 12 of 12")
    assert bot["flags"]["flip_count"] == 12 and bot["portfolio"]["total_pnl"] == 500.0
    holder = explain(app_ctx, TOKEN_PROGRAM)
    assert "excluded by its flags program" in holder.stdout
    assert "program: SPL Token program" in holder.stdout
    launcher = json.loads(explain(app_ctx, LAUNCHERS[0], "--json").stdout)
    assert launcher["status"] == "not_ranked"
    assert launcher["rule"] == (
        "not ranked: seen but without a silver portfolio row (no priced trades in "
        "silver.wallet_pnl)"
    )
    unknown = explain(app_ctx, key("nobody"))
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert "is unknown: not among the top holders, traders or silver portfolios" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_explain_names_the_base_filter_a_wallet_fails(
    app_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_ctx.lake.merge(
        WALLET_PNL, pa.Table.from_pylist([portfolio(LAUNCHERS[1], roi=0.001, win_rate=0.1)]), META
    )
    rank(app_ctx)
    rule = json.loads(explain(app_ctx, LAUNCHERS[1], "--json").stdout)["rule"]
    assert rule == (
        "not ranked: roi 0.001 is not >= gold.min_roi 0.01; "
        "win_rate 0.1 is not >= gold.min_win_rate 0.4"
    )


def test_report_shows_the_flags_the_excluded_wallets_and_links(
    app_ctx: AppContext, tmp_path: Any
) -> None:
    rank(app_ctx)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        ["--config", str(app_ctx.config_path), "gold", "report", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    section = page[page.index("<h2>Flagged wallets</h2>") :]
    assert "17 wallets seen; 10 excluded from the ranking by their flags." in section
    assert '<div class="card"><b>3</b>bot</div>' in section
    for wallet in (BOT_FLIP, SNIPER, DISTRIBUTOR, POOL, BINANCE, INCINERATOR):
        assert f'href="https://birdeye.so/profile/{wallet}?chain=solana"' in section
        assert f'href="https://solscan.io/account/{wallet}"' in section
    assert "not a base58 public key" in section and "Binance 2" in section
    assert f'href="https://birdeye.so/profile/{SMART}?chain=solana"' in page
