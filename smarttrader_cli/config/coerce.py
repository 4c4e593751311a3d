"""Each key's declared type; a file or override value checked, an ST_* variable coerced, to it."""

from __future__ import annotations

import dataclasses
import functools
import json
import typing
from typing import Any

from smarttrader_cli.config.redaction import redact_options
from smarttrader_cli.config.schema import Config, is_section
from smarttrader_cli.errors import ConfigError

ENV_PREFIX = "ST_"
# Environment variables that start with ST_ but are not config overrides.
_NON_OVERRIDE_ENV = {"ST_CONFIG", "ST_WEBHOOK_AUTH_TOKEN", "ST_LOG_FORMAT", "ST_CACHE_DIR"}


def key_type(dotted: str, where: str | None = None) -> Any:
    """The declared type of a dotted key; ConfigError if the schema has no such key."""
    cls: Any = Config
    for part in dotted.split("."):
        hints = _hints(cls)
        if part not in hints:
            section = dotted.rsplit(".", 1)[0] if "." in dotted else "top level"
            raise ConfigError(f"{where or 'environment'}: unknown key {dotted!r} in {section}")
        cls = hints[part]
        if typing.get_origin(cls) is dict:
            return cls
    return cls


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    """A section's field types (evaluating the annotations is most of a config load)."""
    return typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}


def _type_name(tp: Any) -> str:
    if is_section(tp):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list of strings"
    if origin is dict:
        return "a mapping of strings"
    if origin is typing.Literal:
        return f"one of {', '.join(typing.get_args(tp))}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, str(tp)
    )


def check_type(value: Any, tp: Any, dotted: str, where: str) -> Any:
    """`value` if it is of type `tp` (floats widened, map values as strings); else ConfigError."""
    ok: bool
    origin = typing.get_origin(tp)
    if is_section(tp):
        ok = isinstance(value, dict)
    elif origin is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif origin is dict:
        ok = isinstance(value, dict) and all(
            isinstance(v, (str, int, float, bool)) for v in value.values()
        )
        if ok:
            value = {str(k): _stringify(v) for k, v in value.items()}
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str or origin is typing.Literal:  # a choice is checked with the other rules
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, tp) if isinstance(tp, type) else True
    if not ok:
        raise ConfigError(f"{where}: {dotted} must be {_type_name(tp)}, got {_shown(value, tp)}")
    return value


def _shown(value: Any, tp: Any) -> str:
    """A wrong value as an error message may quote it: a string map's secrets redacted."""
    if typing.get_origin(tp) is not dict:
        return repr(value)
    if isinstance(value, dict):
        return repr(redact_options({str(k): v for k, v in value.items()}))
    return f"a {type(value).__name__}"  # it might be a credential pasted in the wrong place


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def env_overrides(env: typing.Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Map each ST_<SECTION>__<KEY> variable to (dotted key, raw value)."""
    found: dict[str, tuple[str, str]] = {}
    top_level = {f.name for f in dataclasses.fields(Config) if not is_section(f.type)}
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or var in _NON_OVERRIDE_ENV:
            continue
        body = var[len(ENV_PREFIX) :]
        if "__" in body:
            found[var] = (".".join(p.lower() for p in body.split("__")), raw)
        elif body.lower() in top_level:
            found[var] = (body.lower(), raw)
    return found


def coerce_env(raw: str, tp: Any, var: str) -> Any:
    """The text of variable `var` as a value of type `tp`; ConfigError naming `var` if it is not."""
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
        if origin is list:
            if raw.strip().startswith("["):
                return check_type(json.loads(raw), tp, var, f"env {var}")
            return [item.strip() for item in raw.split(",") if item.strip()]
        if origin is dict:
            return check_type(json.loads(raw), tp, var, f"env {var}")
        if is_section(tp):
            raise ValueError("a section cannot be set from one variable")
    except (ValueError, json.JSONDecodeError) as exc:
        # a string map may hold credentials: its raw text is not quoted
        got = "text that is not a JSON object" if origin is dict else repr(raw)
        raise ConfigError(f"env {var}: must be {_type_name(tp)}, got {got}") from exc
    return raw


def depth_of_dict(dotted: str) -> int:
    """How many dots precede the first key whose type is a mapping of strings."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        if typing.get_origin(key_type(".".join(parts[:i]))) is dict:
            return i - 1
    return len(parts)
