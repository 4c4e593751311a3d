"""PnL time windows as configured (`pnl.windows`): names, lengths, validation.

Kept free of heavy imports: the config check at load uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_WINDOWS = ("1d", "7d", "30d", "all")
_WINDOW = re.compile(r"([1-9][0-9]*)([hd])")
_UNIT_SECONDS = {"h": 3600, "d": 86400}


@dataclass(frozen=True)
class Window:
    """A PnL window: its configured name and length in seconds (None: all history)."""

    name: str
    seconds: int | None


def window_problem(names: list[str] | tuple[str, ...]) -> str | None:
    """Why a `pnl.windows` list is not valid, or None when it is."""
    if not names:
        return "must list at least one window"
    for name in names:
        if name != "all" and not _WINDOW.fullmatch(str(name)):
            return f"has {name!r}: a window is 'all' or a positive number + h or d (e.g. 12h, 7d)"
    if len(set(names)) != len(names):
        return "lists a window twice"
    return None


def parse_windows(names: tuple[str, ...] | list[str]) -> tuple[Window, ...]:
    """The windows of `pnl.windows`, in their configured order (ValueError on a bad list)."""
    problem = window_problem(names)
    if problem:
        raise ValueError(f"pnl.windows {problem}")
    out = []
    for name in names:
        found = _WINDOW.fullmatch(name)
        seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)] if found else None
        out.append(Window(name, seconds))
    return tuple(out)
