"""Configuration: one YAML file, ST_* environment overrides, secrets from the environment."""

from smarttrader_cli.config.loader import (
    LoadedConfig,
    Secrets,
    config_hash,
    defaults_text,
    find_config_path,
    load_config,
)
from smarttrader_cli.config.schema import Config

__all__ = [
    "Config",
    "LoadedConfig",
    "Secrets",
    "config_hash",
    "defaults_text",
    "find_config_path",
    "load_config",
]
