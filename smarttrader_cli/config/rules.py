"""How a config key is declared: its default, help and rule (what it must be besides its type)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rule:
    """A key's allowed values: one of `choices`, within min/max (`above`: strictly), non-empty."""

    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    above: float | None = None
    nonempty: bool = False

    def problem(self, value: Any) -> str | None:
        """What `value` must be, when it is not; None when it fits."""
        if self.choices:
            if value in self.choices:
                return None
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        if self.nonempty:
            return None if value else "must not be empty"
        low_ok = (self.min is None or value >= self.min) and (
            self.above is None or value > self.above
        )
        if low_ok and (self.max is None or value <= self.max):
            return None
        if self.min is not None and self.max is not None:
            return f"must be between {self.min} and {self.max}, got {value!r}"
        if self.above is not None and self.max is not None:
            return f"must be > {self.above} and <= {self.max}, got {value!r}"
        if self.above is not None:
            return f"must be > {self.above}, got {value!r}"
        return f"must be >= {self.min}, got {value!r}"


@dataclass(frozen=True)
class Relation:
    """A rule over several keys: `holds(*values)`, else the error is `message`."""

    keys: tuple[str, ...]
    holds: Callable[..., bool]
    message: str


ANY = Rule()  # any finite number (a threshold that may be negative)
ZERO_OR_MORE = Rule(min=0)  # 0 means none, off, or no wait
ONE_OR_MORE = Rule(min=1)  # a count or size where 0 makes no sense
POSITIVE = Rule(above=0)  # a duration or scale that cannot be 0
FRACTION = Rule(min=0, max=1)
SHARE = Rule(above=0, max=1)  # a share of memory: 0 would leave nothing
PERCENT = Rule(min=0, max=100)
NONEMPTY = Rule(nonempty=True)


def key(default: Any, help: str, rule: Rule | None = None) -> Any:
    """A config key: its default (MISSING: set by the enclosing section), help and rule."""
    metadata = {"help": help, "rule": rule}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, help: str = "", **defaults: Any) -> Any:
    """A nested section; `defaults` set keys the section class leaves to its user."""
    return field(default_factory=lambda: cls(**defaults), metadata={"help": help})


MISSING: Any = dataclasses.MISSING


@dataclass(frozen=True)
class Key:
    """One leaf key as declared: dotted name, type, default, help and rule."""

    dotted: str
    type: Any
    default: Any
    help: str
    rule: Rule | None

    @property
    def env(self) -> str:
        """The environment variable that overrides this key."""
        return "ST_" + self.dotted.upper().replace(".", "__")


def is_section(tp: Any) -> bool:
    """True for a nested section (a dataclass) rather than a key."""
    return dataclasses.is_dataclass(tp)
