"""Load the YAML config: schema defaults < file < overrides < ST_* environment variables.

The merge, the value rules and the effective config's hash live here; reading the YAML is
config/yaml_lines.py, key types and ST_* coercion config/coerce.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from smarttrader_cli.config.coerce import (
    check_type,
    coerce_env,
    depth_of_dict,
    env_overrides,
    key_type,
)
from smarttrader_cli.config.redaction import (
    is_secret_key,
    redact_options,
    redact_text,
    secret_values,
)
from smarttrader_cli.config.schema import RELATIONS, Config, is_section, keys
from smarttrader_cli.config.yaml_lines import parse_yaml
from smarttrader_cli.errors import ConfigError

log = logging.getLogger("st.config")

DEFAULT_LOCATIONS = (Path("configs/smarttrader.yaml"), Path("smarttrader.yaml"))
SECRET_ENV = {
    "birdeye_api_key": "BIRDEYE_API_KEY",
    "helius_api_key": "HELIUS_API_KEY",
    "webhook_auth_token": "ST_WEBHOOK_AUTH_TOKEN",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    # alert channels (smarttrader_cli/alerts/channels.py)
    "telegram_bot_token": "ST_TELEGRAM_BOT_TOKEN",
    "discord_webhook_url": "ST_DISCORD_WEBHOOK_URL",
    "slack_webhook_url": "ST_SLACK_WEBHOOK_URL",
    "alert_webhook_secret": "ST_ALERT_WEBHOOK_SECRET",
}


@dataclass
class Secrets:
    """Credentials, read only from the environment."""

    birdeye_api_key: str | None = None
    helius_api_key: str | None = None
    webhook_auth_token: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    telegram_bot_token: str | None = None
    discord_webhook_url: str | None = None
    slack_webhook_url: str | None = None
    alert_webhook_secret: str | None = None

    @classmethod
    def from_env(cls, env: typing.Mapping[str, str] | None = None) -> Secrets:
        """Read every secret from `env` (default: os.environ)."""
        env = os.environ if env is None else env
        return cls(**{name: env.get(var) or None for name, var in SECRET_ENV.items()})


@dataclass
class LoadedConfig:
    """The effective config, where each value came from, and the secrets."""

    config: Config
    sources: dict[str, str]
    secrets: Secrets
    path: Path | None = None
    hash: str = field(default="")
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The effective config as plain data, secret storage options redacted."""
        return redacted_dict(self.config)

    def redact(self, text: str) -> str:
        """`text` without any secret this config knows (environment or storage options)."""
        known = list(dataclasses.asdict(self.secrets).values())
        for value in _leaves(self.config).values():
            if isinstance(value, dict):
                known += secret_values(value)
        return redact_text(text, known)


def redacted_dict(config: Config) -> dict[str, Any]:
    """The config as plain data with the values of secret-looking map keys redacted."""
    data = dataclasses.asdict(config)
    for dotted, value in _leaves(config).items():
        if isinstance(value, dict):
            _set_dotted(data, dotted, redact_options(value))
    return data


def defaults_text() -> str:
    """The shipped defaults file, comments included (generated from config/schema.py)."""
    return resources.files("smarttrader_cli.config").joinpath("defaults.yaml").read_text()


def find_config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """Resolve --config / ST_CONFIG / the default locations; None means defaults only."""
    chosen = explicit or os.environ.get("ST_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: typing.Mapping[str, str] | None = None,
    *,
    search: bool = True,
    overrides: typing.Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Build the effective config; raises ConfigError naming file, line and key.

    `overrides` (dotted key -> value, e.g. a command's --port) beat the file and the
    environment, and are checked like every other value.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources = {k.dotted: "default" for k in keys()}
    warnings: list[str] = []

    config_path = find_config_path(path) if search else (Path(path) if path else None)
    if config_path is not None:
        try:
            text = config_path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config {config_path}: {exc.strerror}") from exc
        data, lines = parse_yaml(text, str(config_path))
        _merge(values, sources, data, lines, str(config_path), warnings)

    for var, (dotted, raw) in env_overrides(env).items():
        expected = key_type(dotted, f"env {var}")
        if typing.get_origin(expected) is dict and dotted.count(".") > depth_of_dict(dotted):
            section, entry = dotted.rsplit(".", 1)
            entry = var.rsplit("__", 1)[1]  # map keys keep their case (AWS_ENDPOINT_URL)
            _get_or_create(values, section)[entry] = raw
            sources[f"{section}.{entry}"] = f"env {var}"
            continue
        _set_dotted(values, dotted, coerce_env(raw, expected, var))
        sources[dotted] = f"env {var}"

    for dotted, value in (overrides or {}).items():
        where = f"override {dotted}"
        _set_dotted(values, dotted, check_type(value, key_type(dotted, where), dotted, where))
        sources[dotted] = where

    config = _build(Config(), values)
    check_values(config, sources)
    loaded = LoadedConfig(config, sources, Secrets.from_env(env), config_path, warnings=warnings)
    loaded.hash = config_hash(config)
    for warning in warnings:
        log.warning("%s", warning)
    return loaded


def check_values(
    config: Config, sources: typing.Mapping[str, str] | None = None, sections: tuple[str, ...] = ()
) -> None:
    """ConfigError for the first value outside its rule (config/schema.py).

    Every float must be finite. `sources` (dotted key -> "file:line" or "env VAR") names
    where a value came from; `sections` limits the check to those top-level sections.
    """
    values = _leaves(config)
    rules = {k.dotted: k.rule for k in keys()}

    def where(dotted: str) -> str:
        return f"{sources.get(dotted, 'default')}: " if sources is not None else ""

    def wanted(dotted: str) -> bool:
        return not sections or dotted.split(".", 1)[0] in sections

    for dotted, value in values.items():
        if not wanted(dotted):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where(dotted)}{dotted} must be a finite number, got {value!r}")
        rule = rules.get(dotted)
        problem = rule.problem(value) if rule is not None else None
        if problem:
            raise ConfigError(f"{where(dotted)}{dotted} {problem}")
    for relation in RELATIONS:
        if not all(wanted(k) for k in relation.keys):
            continue
        args = [values[k] for k in relation.keys]
        if not relation.holds(*args):
            # name the key the user set, not the default it clashes with
            key = next(
                (k for k in relation.keys if sources and sources.get(k, "default") != "default"),
                relation.keys[0],
            )
            got = ", ".join(repr(a) for a in args[:-1]) + f" and {args[-1]!r}"
            raise ConfigError(f"{where(key)}{relation.message}, got {got}")


def _leaves(section: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every non-section field, in declaration order."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        dotted = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(_leaves(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def config_hash(config: Config) -> str:
    """A short stable digest of the effective config, stored with every commit.

    Secret storage options are digested redacted: a rotated key is the same config, and
    the digest in every commit must not help anyone guess a weak secret.
    """
    canonical = json.dumps(redacted_dict(config), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _merge(
    values: dict[str, Any],
    sources: dict[str, str],
    data: dict[str, Any],
    lines: dict[str, int],
    filename: str,
    warnings: list[str],
    prefix: str = "",
) -> None:
    """Overlay `data` onto `values`, rejecting keys the schema does not have."""
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        where = f"{filename}:{lines[dotted]}" if dotted in lines else filename
        expected = key_type(dotted, where)
        if is_section(expected) and isinstance(value, dict):
            values.setdefault(key, {})
            _merge(values[key], sources, value, lines, filename, warnings, dotted)
            continue
        values[key] = check_type(value, expected, dotted, where)
        sources[dotted] = where
        if typing.get_origin(expected) is dict:
            warnings += _secrets_in_file(dotted, values[key], lines, filename)


def _secrets_in_file(
    dotted: str, options: dict[str, str], lines: dict[str, int], filename: str
) -> list[str]:
    """Warnings for credentials written into the file; SPEC: secrets come from the environment."""
    found = []
    for entry in sorted(options, key=lambda e: lines.get(f"{dotted}.{e}", 0)):
        if not (options[entry] and is_secret_key(entry)):
            continue
        var = (
            entry
            if entry in SECRET_ENV.values()
            else f"ST_{dotted.upper().replace('.', '__')}__{entry}"
        )
        line = lines.get(f"{dotted}.{entry}")
        where = f"{filename}:{line}" if line else filename
        found.append(f"{where}: {dotted}.{entry} is a secret; set {var} in the environment instead")
    return found


def _get_or_create(values: dict[str, Any], dotted: str) -> dict[str, Any]:
    for part in dotted.split("."):
        values = values.setdefault(part, {})
    return values


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        values = values.setdefault(part, {})
    values[parts[-1]] = value


def _build(defaults: Any, values: dict[str, Any]) -> Any:
    """`defaults` (a section of Config()) with the checked plain data in `values` applied."""
    changes = {
        name: _build(getattr(defaults, name), value)
        if isinstance(value, dict) and is_section(getattr(defaults, name))
        else value
        for name, value in values.items()
    }
    return dataclasses.replace(defaults, **changes)
