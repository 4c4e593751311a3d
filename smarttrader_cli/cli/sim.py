"""`st sim`: the offline market simulator (BirdEye and Helius on localhost)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from smarttrader_cli.cli.options import FormatOption
from smarttrader_cli.cli.output import OutputFormat, emit
from smarttrader_cli.errors import EXIT_FAILED

app = typer.Typer(help="The offline market simulator.", no_args_is_help=True)

SeedOption = Annotated[int, typer.Option("--seed", help="Market seed: same seed, same market.")]
WalletsOption = Annotated[int, typer.Option("--wallets", min=12, help="Wallets in the market.")]
TokensOption = Annotated[int, typer.Option("--tokens", min=3, help="Non-quote tokens.")]
TradesOption = Annotated[
    int, typer.Option("--trades", min=1, help="Approximate total swaps over all wallets.")
]
EndTimeOption = Annotated[
    int | None,
    typer.Option("--end-time", help="Unix time of the market's 'now' (default: this hour)."),
]
TidyOption = Annotated[
    bool,
    typer.Option(
        "--tidy",
        help="The documented shapes only: no real-payload quirks (has_next, null "
        "inner_ins_index, openbook fills, string amounts, wSOL wraps, mislabelled swaps...).",
    ),
]
StartTimeOption = Annotated[
    int | None,
    typer.Option(
        "--start-time", help="Unix time of the first Helius event (default: now - 2 s per event)."
    ),
]


PLANTED_ROLES = ("smart", "faded", "losing", "bot", "sniper", "distributor")


class Swaps(StrEnum):
    birdeye = "birdeye"
    helius = "helius"


def _settings(  # type: ignore[no-untyped-def]
    seed: int, wallets: int, tokens: int, trades: int, end_time: int | None, tidy: bool, **kw
):
    from smarttrader_cli.sim.market import SimSettings

    return SimSettings(
        seed=seed,
        wallets=wallets,
        tokens=tokens,
        trades=trades,
        end_time=end_time,
        quirks=not tidy,
        **kw,
    )


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8900,
    host: Annotated[str, typer.Option("--host", help="Bind address.")] = "127.0.0.1",
    seed: SeedOption = 7,
    wallets: WalletsOption = 500,
    tokens: TokensOption = 20,
    trades: TradesOption = 300_000,
    rate_limit: Annotated[
        float, typer.Option("--rate-limit", min=0, help="BirdEye requests/s before 429; 0 = off.")
    ] = 0.0,
    fault_rate: Annotated[
        float,
        typer.Option(
            "--fault-rate",
            min=0,
            max=1,
            help="Share of BirdEye requests that fail (5xx, slow, bad JSON).",
        ),
    ] = 0.0,
    fault_delay: Annotated[
        float, typer.Option("--fault-delay", min=0, help="Seconds a slow fault stalls.")
    ] = 3.0,
    end_time: EndTimeOption = None,
    tidy: TidyOption = False,
    deny_path: Annotated[
        list[str] | None,
        typer.Option(
            "--deny-path",
            help="A BirdEye path outside the key's plan: answered 403 (repeatable).",
        ),
    ] = None,
) -> None:
    """Serve a deterministic market on localhost until interrupted.

    Point `birdeye.base_url` and `helius.api_base_url` at http://127.0.0.1:PORT. By
    default the payloads carry the quirks of real ones (API_CONTRACTS.md); --tidy
    serves the documented shapes only.

    Example: st sim serve --port 8900 --seed 7 --wallets 500 --rate-limit 50 --fault-rate 0.05
    """
    from smarttrader_cli.sim.server import serve as run_server

    settings = _settings(
        seed,
        wallets,
        tokens,
        trades,
        end_time,
        tidy,
        rate_limit=rate_limit,
        fault_rate=fault_rate,
        fault_delay_seconds=fault_delay,
        denied_paths=tuple(deny_path or ()),
    )
    typer.echo(f"st sim: serving seed {seed} on http://{host}:{port} (Ctrl-C stops)", err=True)
    run_server(settings, host=host, port=port)


@app.command("truth")
def truth(
    seed: SeedOption = 7,
    wallets: WalletsOption = 500,
    tokens: TokensOption = 20,
    trades: TradesOption = 300_000,
    end_time: EndTimeOption = None,
    tidy: TidyOption = False,
    swaps: Annotated[
        Swaps | None,
        typer.Option(
            "--swaps",
            help="Print the true legs of every planted swap, as BirdEye serves them or as "
            "`st sim emit-webhooks` sends them (default: the planted wallets).",
        ),
    ] = None,
    wallet: Annotated[
        list[str] | None,
        typer.Option("--wallet", help="With --swaps birdeye: only this wallet (repeatable)."),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels",
            help="Every planted address with its label: smart, faded, bot, sniper, "
            "distributor, pool, exchange, burn or ordinary.",
        ),
    ] = False,
    security: Annotated[
        bool,
        typer.Option(
            "--security",
            help="Every token's planted security facts (mint and freeze authority, top-10 "
            "holder share, liquidity) and whether its /defi/token_security lookup fails.",
        ),
    ] = False,
    count: Annotated[
        int, typer.Option("--count", "-n", min=1, help="With --swaps helius: events.")
    ] = 100,
    start_time: Annotated[
        int | None,
        typer.Option(
            "--start-time",
            help="With --swaps helius: the start time emit-webhooks printed (required).",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Print the planted wallets by role, every address's label, or the true legs of swaps.

    Roles: smart, faded, losing, bot, sniper, distributor (retail wallets are left out);
    --labels adds retail wallets and the holders that never trade (pool, exchange, burn),
    each with the label a wallet classifier should give it. The market options (--seed,
    --wallets, --tokens, --trades, --end-time, --tidy) must be those of the `st sim
    serve` or `st sim emit-webhooks` being checked.

    --security prints each token's planted security facts instead (what the safety gate
    of alerts should find).

    Example: st sim truth --labels --seed 7 --format csv
    """
    from smarttrader_cli.sim.market import Market

    market = Market(_settings(seed, wallets, tokens, trades, end_time, tidy))
    if security:
        from smarttrader_cli.sim.security_api import security_truth

        found = security_truth(market)
        emit(found, fmt, list(found[0]), title=f"planted token security, seed {seed}")
        return
    if swaps is None:
        kinds = {w.address: w.kind for w in market.wallets}
        if labels:
            rows: list[dict[str, Any]] = [
                {"wallet_address": a, "label": label, "role": kinds.get(a, label)}
                for a, label in market.labels().items()
            ]
            columns = ["wallet_address", "label", "role"]
            emit(rows, fmt, columns, title=f"planted addresses, seed {seed}")
            return
        rows = [
            {"wallet_address": w.address, "role": w.kind}
            for role in PLANTED_ROLES
            for w in market.wallets
            if w.kind == role
        ]
        emit(rows, fmt, ["wallet_address", "role"], title=f"planted wallets, seed {seed}")
        return
    from smarttrader_cli.sim import truth as sim_truth

    if swaps is Swaps.birdeye:
        legs = sim_truth.birdeye_truth(market, wallet or None)
        rows = sim_truth.leg_rows(legs)
        emit(rows, fmt, sim_truth.LEG_COLUMNS, title=f"BirdEye swap legs, seed {seed}")
        return
    if start_time is None:
        raise typer.BadParameter("--swaps helius needs --start-time", param_hint="--start-time")
    events = sim_truth.helius_truth(market, count, start_time)
    if fmt is OutputFormat.json:
        nested = [{**e, "legs": sim_truth.leg_rows(e["legs"])} for e in events]
        typer.echo(json.dumps(nested))
        return
    columns = ["outcome", *sim_truth.LEG_COLUMNS]
    emit(sim_truth.helius_rows(events), fmt, columns, title=f"Helius events, seed {seed}")


@app.command("emit-webhooks")
def emit_webhooks(
    url: Annotated[
        str, typer.Option("--url", help="Where to POST (st webhook serve's /webhooks).")
    ],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Events to send.")] = 100,
    auth_token: Annotated[
        str | None,
        typer.Option(
            "--auth-token", envvar="ST_WEBHOOK_AUTH_TOKEN", help="Authorization header value."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Events per POST.")] = 10,
    duplicate_rate: Annotated[
        float, typer.Option("--duplicate-rate", min=0, max=1, help="Share of events sent twice.")
    ] = 0.0,
    seed: SeedOption = 7,
    wallets: WalletsOption = 500,
    tokens: TokensOption = 20,
    trades: TradesOption = 300_000,
    end_time: EndTimeOption = None,
    tidy: TidyOption = False,
    start_time: StartTimeOption = None,
) -> None:
    """POST Helius enhanced transactions made by the market's wallets to a URL.

    Mostly swaps, some failed transactions and plain transfers, shaped as real deliveries
    unless --tidy. Prints the start time: `st sim truth --swaps helius --start-time T`
    (same market options and --count) then says what each event really traded.

    Example: st sim emit-webhooks --url http://127.0.0.1:8000/webhooks --count 500 --auth-token s3cret
    """
    from smarttrader_cli.errors import StError
    from smarttrader_cli.sim.webhooks import emit_webhooks as emit_events

    try:
        result = emit_events(
            url,
            _settings(seed, wallets, tokens, trades, end_time, tidy),
            count,
            auth_token,
            batch_size=batch_size,
            duplicate_rate=duplicate_rate,
            start_time=start_time,
        )
    except Exception as exc:  # httpx errors: connection refused, timeouts
        raise StError(f"could not POST webhooks to {url}: {exc}") from exc
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(result.statuses.items()))
    typer.echo(
        f"sent {result.events} events in {result.posts} POSTs ({statuses}), "
        f"start time {result.start_time}"
    )
    if any(code >= 300 for code in result.statuses):
        raise typer.Exit(EXIT_FAILED)
