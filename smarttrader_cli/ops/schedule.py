"""The supercronic schedule: parse and check it, and compress it into a seconds-scale test copy.

`st ops schedule compress crontab/smarttrader.crontab` prints a copy
where each job keeps its relative cadence and order but fires every few seconds, for the
schedule integration test and for watching the whole pipeline turn over on a laptop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

REQUIRED_PREFIX = "st --log-format json "
_ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Job:
    """One crontab line: where it is, when it fires, what it runs."""

    line: int
    expression: str
    command: str


def parse_crontab(text: str) -> list[Job]:
    """Jobs of a 5-field crontab; comments, blank lines and VAR=value lines are skipped."""
    jobs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or _ENV_LINE.match(line):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6:
            raise ValueError(f"line {number}: expected 5 time fields and a command: {line!r}")
        jobs.append(Job(number, " ".join(fields[:5]), fields[5]))
    return jobs


def check_jobs(jobs: Sequence[Job]) -> list[str]:
    """Problems with the jobs: every line must run `st --log-format json ...` on a daily cycle."""
    problems = []
    for job in jobs:
        if not job.command.startswith(REQUIRED_PREFIX):
            problems.append(f"line {job.line}: command must start with {REQUIRED_PREFIX.strip()!r}")
        try:
            fire_minutes(job.expression)
        except ValueError as exc:
            problems.append(f"line {job.line}: {exc}")
    return problems


def fire_minutes(expression: str) -> list[int]:
    """Minutes of the day a 5-field expression fires at (day, month and weekday must be *)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields, got {len(fields)}: {expression!r}")
    minute, hour, dom, month, dow = fields
    if (dom, month, dow) != ("*", "*", "*"):
        raise ValueError(f"only daily cycles are supported here: {expression!r}")
    minutes = expand_field(minute, 0, 59)
    hours = expand_field(hour, 0, 23)
    return sorted(h * 60 + m for h in hours for m in minutes)


def expand_field(field: str, low: int, high: int) -> list[int]:
    """Values of one cron field: *, N, A-B, lists, and /step on * or ranges."""
    values: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"bad step in {field!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-", 1))
        else:
            start = int(base)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ValueError(f"{field!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return sorted(values)


def compressed_expression(expression: str, fastest: int = 3, slowest: int = 30) -> str:
    """A 7-field (seconds) expression with the job's cadence squeezed into [fastest, slowest] s.

    Intervals map on a log scale (5 min → `fastest`, 1 day → `slowest`) so every job
    runs within a minute; the offset inside the interval is kept, so order is kept.
    """
    times = fire_minutes(expression)
    interval = MINUTES_PER_DAY / len(times)
    ratio = math.log(interval / 5) / math.log(MINUTES_PER_DAY / 5) if interval > 5 else 0.0
    period = round(fastest * (slowest / fastest) ** min(max(ratio, 0.0), 1.0))
    offset = round((times[0] % interval) / interval * period) % period
    return f"{offset}-59/{period} * * * * * *"


def compress(
    text: str,
    *,
    fastest: int = 3,
    slowest: int = 30,
    replace: Sequence[tuple[str, str]] = (),
    prefix: str = "",
) -> str:
    """The crontab with every job on a seconds scale; `replace` edits commands, `prefix` leads them."""
    lines = [f"# compressed from the production schedule: fastest {fastest} s, slowest {slowest} s"]
    for job in parse_crontab(text):
        command = job.command
        for old, new in replace:
            command = command.replace(old, new)
        lines.append(f"{compressed_expression(job.expression, fastest, slowest)} {prefix}{command}")
    return "\n".join(lines) + "\n"
