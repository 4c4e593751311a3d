"""The supercronic schedule: SPEC §9 cadence, JSON logs, real commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from smarttrader_cli.ops.schedule import (
    check_jobs,
    compress,
    compressed_expression,
    expand_field,
    fire_minutes,
    parse_crontab,
)

CRONTAB = Path(__file__).resolve().parents[3] / "crontab" / "smarttrader.crontab"


def jobs_by_command() -> dict[str, list[int]]:
    """`bronze tokens` → minutes of the day it fires."""
    out = {}
    for job in parse_crontab(CRONTAB.read_text()):
        words = job.command.split()[3:]  # after `st --log-format json`
        out[" ".join(w for w in words[:2] if not w.startswith("-"))] = fire_minutes(job.expression)
    return out


def test_every_line_runs_st_with_json_logs() -> None:
    jobs = parse_crontab(CRONTAB.read_text())
    assert jobs
    assert check_jobs(jobs) == []


def test_cadence_matches_spec() -> None:
    jobs = jobs_by_command()
    per_day = {command: len(minutes) for command, minutes in jobs.items()}
    assert per_day == {
        "bronze tokens": 4,
        "bronze whales": 4,
        "bronze trades": 4,
        "silver pnl": 2,
        "gold rank": 1,
        "helius sync": 1,
        "stream drain": 288,
        "bronze prices": 96,
        "silver webhooks": 96,
        "gold flows": 96,
        "ops cleanup": 1,
        "ops compact": 24,
        "alerts run": 96,
        "alerts deliver": 96,
    }


def test_stages_run_in_dependency_order() -> None:
    jobs = jobs_by_command()
    first = {command: minutes[0] for command, minutes in jobs.items()}
    assert first["bronze tokens"] < first["bronze whales"] < first["bronze trades"]
    assert first["bronze trades"] < first["silver pnl"] < first["gold rank"] < first["helius sync"]
    assert first["bronze prices"] < first["silver webhooks"] < first["gold flows"]
    assert first["silver webhooks"] < first["alerts run"] < first["alerts deliver"]
    # every pnl run comes after a trades run of the same cycle, not before it
    for pnl in jobs["silver pnl"]:
        assert any(0 < pnl - trades <= 60 for trades in jobs["bronze trades"])


def test_drain_stops_before_the_next_tick() -> None:
    drain = next(j for j in parse_crontab(CRONTAB.read_text()) if "stream drain" in j.command)
    seconds = int(drain.command.split("--max-seconds", 1)[1].split()[0])
    assert 0 < seconds < 300


def test_commands_exist_in_the_cli() -> None:
    from smarttrader_cli.docs_gen import command_paths

    leaves = {" ".join(path) for path, leaf in command_paths() if leaf}
    missing = sorted(set(jobs_by_command()) - leaves)
    assert missing == [], f"crontab runs commands st does not have: {missing}"


def test_check_jobs_flags_bad_lines() -> None:
    jobs = parse_crontab("0 * * * * st bronze tokens\n0 0 1 * * st --log-format json gold rank\n")
    problems = check_jobs(jobs)
    assert problems[0].startswith("line 1: command must start with")
    assert problems[1].startswith("line 2: only daily cycles")
    with pytest.raises(ValueError, match="line 1: expected 5 time fields"):
        parse_crontab("*/5 * * st\n")


@pytest.mark.parametrize(
    ("field", "values"),
    [("*/15", [0, 15, 30, 45]), ("2-59/15", [2, 17, 32, 47]), ("1,13", [1, 13]), ("7", [7])],
)
def test_expand_field(field: str, values: list[int]) -> None:
    assert expand_field(field, 0, 59) == values


def test_compressed_keeps_order_and_bounds() -> None:
    assert compressed_expression("*/5 * * * *", 3, 30) == "0-59/3 * * * * * *"
    assert compressed_expression("30 4 * * *", 3, 30).endswith("/30 * * * * * *")
    text = compress(CRONTAB.read_text(), replace=[("--max-seconds 240", "--max-seconds 2")])
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == len(parse_crontab(CRONTAB.read_text()))
    assert all(len(line.split()) > 7 and line.split()[7] == "st" for line in lines)
    assert "--max-seconds 2" in text and "--max-seconds 240" not in text
    offsets = {line.split(" st ", 1)[1]: int(line.split("-", 1)[0]) for line in lines}
    tokens, whales, trades = (
        offsets[f"--log-format json bronze {s}"] for s in ("tokens", "whales", "trades")
    )
    assert tokens < whales < trades
