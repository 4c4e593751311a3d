"""`st gold report`: one self-contained HTML file (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StError
from smarttrader_cli.report import data, svg
from smarttrader_cli.report.links import birdeye_url, solscan_url, token_url

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake

TIERS = ("elite", "strong", "promising")
TABLE_ROWS = 25  # at least this many wallets in the page's table

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1000px;color:#222;background:#fafafa}
h1{margin-bottom:4px}.sub{color:#666;margin-top:0}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:16px;margin:16px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e3e3;
border-radius:8px;padding:10px 16px;min-width:120px}.card b{display:block;font-size:22px}
svg.chart{max-width:100%;height:auto}.plot{fill:#fff;stroke:#ccc}.grid{stroke:#eee}
.zero{stroke:#999;stroke-dasharray:4 3}.tick{font-size:11px;fill:#555}
.axis-label{font-size:12px;fill:#333}.legend{font-size:12px;fill:#333}
.empty{font-size:14px;fill:#888}.box{fill-opacity:.25}.whisker{stroke-width:1.5}
.median{stroke:#111;stroke-width:2}.series{fill:none;stroke-width:2}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}
th:nth-child(2),td:nth-child(2),th:nth-child(3),td:nth-child(3){text-align:left}
td.addr{font-family:ui-monospace,monospace}td.addr a{color:inherit}
td.why{text-align:left;font-size:12px;color:#444}.links{font-size:11px}
table.now td,table.now th{text-align:right}table.now td.l,table.now th.l{text-align:left}
.blocked{color:#a40000}.unknown{color:#8a6d00}.passed{color:#1b6e20}
"""


@dataclass
class SmartMoneyNow:
    """The "smart money now" section: the latest flows, the latest alerts, the channels."""

    flows: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    channels: list[str]


@dataclass
class ReportSummary:
    """What was written."""

    path: Path
    wallets: int
    charts: int


def short(address: str) -> str:
    return address if len(address) <= 12 else f"{address[:4]}…{address[-4:]}"


def write_report(lake: Lake, config: Config, out: Path, *, top: int = 10) -> ReportSummary:
    """Render the report for the lake's current ranking and write it atomically to `out`."""
    rows = data.ranking(lake)
    leaders = rows[:top]
    series = data.cumulative_realized_pnl(lake, config, [r["wallet_address"] for r in leaders])
    shown = [r["wallet_address"] for r in rows[: max(top, TABLE_ROWS)]]
    page = render(
        rows,
        series,
        lake_root=lake.root,
        top=top,
        flags=data.wallet_flags(lake),
        windows=data.window_pnl(lake, shown),
        now=SmartMoneyNow(
            data.latest_flows(lake), data.latest_alerts(lake), list(config.alerts.channels)
        ),
    )
    _write_atomic(out, page)
    return ReportSummary(out, len(rows), page.count('class="chart"'))


def render(
    rows: list[dict[str, Any]],
    series: dict[str, list[tuple[int, float]]],
    *,
    lake_root: str,
    top: int,
    flags: data.FlagSummary | None = None,
    windows: dict[str, dict[str, float | None]] | None = None,
    now: SmartMoneyNow | None = None,
) -> str:
    """The whole HTML page."""
    flags = flags or data.FlagSummary()
    groups: dict[str, list[tuple[float, str]]] = {t: [] for t in TIERS}
    points = []
    for r in rows:
        label = (
            f"#{r['rank']} {r['wallet_address']} ({r['tier']}): PnL {r['total_pnl']:,.2f} "
            f"USD, ROI {_pct(r['roi'])}, win rate {_pct(r['win_rate'])}"
        )
        if r["total_pnl"] is not None and r["total_pnl"] > 0:
            groups.setdefault(r["tier"], []).append((float(r["total_pnl"]), label))
        if r["roi"] is not None and r["win_rate"] is not None:
            points.append(svg.Point(float(r["win_rate"]), float(r["roi"]), r["tier"], label))
    rank_of = {r["wallet_address"]: r["rank"] for r in rows}
    named = {f"#{rank_of.get(w)} {short(w)}": pts for w, pts in series.items()}
    charts = [
        (
            "PnL distribution by tier",
            "Total PnL (USD) of every ranked wallet, per tier: box = "
            "quartiles, line = median, whiskers = min to max, dots = wallets.",
            svg.distribution_chart(groups, "PnL distribution by tier"),
        ),
        (
            "ROI vs win rate",
            "Each dot is a ranked wallet, coloured by tier (hover for details).",
            svg.scatter_chart(points, "win rate", "ROI", "ROI vs win rate"),
        ),
        (
            f"Cumulative realized PnL of the top {min(top, len(rows))} wallets",
            "Realized FIFO PnL (USD) of the wallet's trades up to the end of each day, "
            "computed with the silver PnL engine.",
            svg.line_chart(named, "realized PnL (USD)", "Cumulative realized PnL"),
        ),
    ]
    counts = {t: sum(1 for r in rows if r["tier"] == t) for t in TIERS}
    total = sum((r["total_pnl"] or 0.0) for r in rows)
    cards = [("ranked wallets", f"{len(rows):,}")] + [(t, f"{n:,}") for t, n in counts.items()]
    cards.append(("total PnL (USD)", f"{total:,.0f}"))
    if flags.seen:
        cards.append(("flagged wallets excluded", f"{flags.excluded_total:,}"))
    ranked_at = next((r["ranked_at"] for r in rows if r.get("ranked_at")), None)
    subtitle = f"lake {escape(lake_root)} · ranked {_when(ranked_at)} · generated {_when(None)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>st smart wallets report</title><style>{CSS}</style></head><body>",
        "<h1>Smart wallets</h1>",
        f'<p class="sub">{subtitle}</p>',
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in cards)
        + "</div>",
    ]
    if now is not None:
        parts.append(_smart_money_section(now))
    for title, caption, chart in charts:
        parts.append(
            f'<section><h2>{escape(title)}</h2><p class="sub">{escape(caption)}</p>'
            f"{chart}</section>"
        )
    parts.append(_table(rows[: max(top, TABLE_ROWS)], windows or {}))
    if flags.seen:
        parts.append(_flags_section(flags))
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(rows: list[dict[str, Any]], windows: dict[str, dict[str, float | None]]) -> str:
    """The top wallets; a total PnL column per time window when silver has windows."""
    names = sorted({w for per in windows.values() for w in per if w != "all"}, key=_window_seconds)
    head = ("rank", "wallet", "tier", "score", "total PnL", *(f"PnL {w}" for w in names),
            "ROI", "win rate", "trades")  # fmt: skip
    body = "".join(
        f"<tr><td>{r['rank']}</td>{_wallet_cell(r['wallet_address'])}"
        f"<td>{escape(str(r['tier']))}</td><td>{(r['score'] or 0):.3f}</td>"
        f"<td>{(r['total_pnl'] or 0):,.2f}</td>"
        + "".join(f"<td>{_usd(windows.get(r['wallet_address'], {}).get(w))}</td>" for w in names)
        + f"<td>{_pct(r['roi'])}</td>"
        f"<td>{_pct(r['win_rate'])}</td><td>{r['trade_count'] or 0}</td></tr>"
        for r in rows
    )
    heads = "".join(f"<th>{h}</th>" for h in head)
    return (
        f"<section><h2>Top {len(rows)} wallets</h2><table><thead><tr>{heads}</tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def _smart_money_section(now: SmartMoneyNow) -> str:
    """The newest smart-money flows (gold.token_flows) and alerts (ops.alerts)."""
    if now.flows:
        head = _heads(("window (UTC)", "l"), ("token", "l"), ("smart buys USD", ""),
                      ("smart sells USD", ""), ("net USD", ""), ("buyers", ""), ("sellers", ""))  # fmt: skip
        body = "".join(
            f'<tr><td class="l">{_when(f["window_start"])} · {f["window_minutes"]} min</td>'
            f"{_token_cell(f['token_address'])}"
            f"<td>{_usd_or_unpriced(f['buy_volume_usd'], f['unpriced_buy_count'])}</td>"
            f"<td>{_usd_or_unpriced(f['sell_volume_usd'], f['unpriced_sell_count'])}</td>"
            f"<td>{_usd(f['net_flow_usd']) or 'n/a'}</td>"
            f"<td>{f['smart_buyers'] or 0}</td><td>{f['smart_sellers'] or 0}</td></tr>"
            for f in now.flows
        )
        flows = f'<table class="now"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    else:
        flows = (
            '<p class="sub">No smart-money flows yet: <code>st gold flows</code> builds them '
            "from the buys <code>st silver webhooks</code> parses.</p>"
        )
    if now.alerts:
        head = _heads(("when (UTC)", "l"), ("rule", "l"), ("token", "l"), ("wallet", "l"),
                      ("USD", ""), ("safety", "l"), ("state per channel", "l"))  # fmt: skip
        body = "".join(
            f'<tr><td class="l">{_when(a["event_time"] or a["created_at"])}</td>'
            f'<td class="l">{escape(str(a["rule"]))}</td>{_token_cell(a["token_address"])}'
            f'<td class="l addr">{_wallets(a["wallets"])}</td>'
            f"<td>{_usd(a['value_usd'])}</td>{_safety_cell(a)}"
            f'<td class="l">{_states(a["states"])}</td></tr>'
            for a in now.alerts
        )
        alerts = f'<table class="now"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    elif not now.channels:
        alerts = (
            '<p class="sub">No alerts yet: configure <code>alerts.channels</code> '
            "(docs/alerts.md), then <code>st alerts run</code> or <code>st follow</code>.</p>"
        )
    else:
        alerts = (
            '<p class="sub">No alerts yet: <code>st alerts run</code> (or <code>st follow</code>) '
            "raises them when ranked wallets buy.</p>"
        )
    return (
        "<section><h2>Smart money now</h2>"
        '<h3>Latest flows</h3><p class="sub">Smart-wallet buying and selling per token and '
        "window (gold.token_flows), newest window first.</p>"
        f"{flows}"
        '<h3>Latest alerts</h3><p class="sub">The outbox (ops.alerts), newest first; a '
        "blocked alert was held back by the token safety gate and never sent.</p>"
        f"{alerts}</section>"
    )


def _heads(*columns: tuple[str, str]) -> str:
    return "".join(f'<th class="{cls}">{escape(name)}</th>' for name, cls in columns)


def _token_cell(token: str) -> str:
    return (
        f'<td class="l addr"><a href="{escape(token_url(token))}" '
        f'title="{escape(token)}">{escape(short(token))}</a></td>'
    )


def _wallets(wallets: list[str]) -> str:
    if len(wallets) > 3:
        return f"{len(wallets)} wallets"
    return ", ".join(
        f'<a href="{escape(birdeye_url(w))}" title="{escape(w)}">{escape(short(w))}</a>'
        for w in wallets
    )


def _safety_cell(alert: dict[str, Any]) -> str:
    verdict = alert["safety"]
    if verdict is None:
        return '<td class="l">not checked</td>'
    why = f": {alert['safety_reasons']}" if alert["safety_reasons"] else ""
    return f'<td class="l {escape(verdict)}">{escape(verdict + why)}</td>'


def _states(states: dict[str, str]) -> str:
    return " · ".join(f"{escape(c)} {escape(s)}" for c, s in sorted(states.items()))


def _usd_or_unpriced(value: float | None, unpriced: int | None) -> str:
    """A flow's USD; its legs without a USD value said, not hidden (the volume is null)."""
    shown = _usd(value) or "n/a"
    return f"{shown} ({unpriced} unpriced)" if unpriced else shown


def _window_seconds(name: str) -> int:
    """A window name's length (1d, 12h), for ordering the columns shortest first."""
    from smarttrader_cli.engines.pnl_windows import parse_windows

    try:
        return parse_windows([name])[0].seconds or 0
    except ValueError:  # a name silver wrote under an older config: last
        return 1 << 62


def _wallet_cell(wallet: str) -> str:
    """The address (linked to its BirdEye profile) and a Solscan link."""
    return (
        f'<td class="addr"><a href="{escape(birdeye_url(wallet))}">{escape(wallet)}</a> '
        f'<a class="links" href="{escape(solscan_url(wallet))}">solscan</a></td>'
    )


def _flags_section(flags: data.FlagSummary) -> str:
    """Wallets per flag and the excluded wallets with their reasons."""
    counts = "".join(
        f'<div class="card"><b>{n:,}</b>{escape(name)}</div>' for name, n in flags.per_flag.items()
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("#", "wallet", "flags", "total PnL", "ROI", "win rate", "why")
    )
    body = "".join(
        f"<tr><td>{i}</td>{_wallet_cell(r['wallet_address'])}"
        f"<td>{escape(r['flags'])}</td>"
        f"<td>{_usd(r['total_pnl'])}</td>"
        f"<td>{_pct(r['roi'])}</td><td>{_pct(r['win_rate'])}</td>"
        f'<td class="why">{escape(r["reasons"])}</td></tr>'
        for i, r in enumerate(flags.excluded, start=1)
    )
    shown = len(flags.excluded)
    more = f" (the first {shown} by total PnL)" if shown < flags.excluded_total else ""
    return (
        f'<section><h2>Flagged wallets</h2><p class="sub">{flags.seen:,} wallets seen; '
        f"{flags.excluded_total:,} excluded from the ranking by their flags{more}. "
        "Definitions: docs/scoring.md.</p>"
        f'<div class="cards">{counts}</div>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def _usd(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _when(value: datetime | None) -> str:
    return (value or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")


def _write_atomic(out: Path, page: str) -> None:
    out = out.expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".st-report-", suffix=".html", dir=out.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the report from others
        os.replace(tmp, out)
    except OSError as exc:
        raise StError(f"cannot write report {out}: {exc.strerror}") from exc
