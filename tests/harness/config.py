"""Test configs: the shipped defaults, local directories under one folder, dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smarttrader_cli.config import defaults_text


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.replace("__", ".").split(".")
    node: Any = tree
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"config key {'.'.join(parts[: i + 1])!r} does not exist")
        node = node[part]
    leaf = parts[-1]
    if not isinstance(node, dict):
        raise KeyError(f"config key {'.'.join(parts[:-1])!r} is not a section")
    # free-form maps (default {}) such as lake.storage_options accept new keys
    if leaf not in node and node:
        raise KeyError(f"config key {dotted!r} does not exist")
    node[leaf] = value


def write_config(directory: Path, overrides: dict[str, Any] | None = None, **dotted: Any) -> Path:
    """Write ``<directory>/smarttrader.yaml``: the defaults, local dirs under ``directory``,
    then the overrides (``{"lake.root": ...}`` or ``lake__root=...``); returns its path.

    An unknown key raises KeyError, so a typo cannot leave a default silently in place.
    """
    directory = Path(directory)
    tree = yaml.safe_load(defaults_text())
    local = {
        "lake.root": directory / "lake",
        "runtime.state_dir": directory / "state",
        "runtime.log_dir": directory / "logs",
        "webhook.spool_dir": directory / "spool",
        "stream.local_dir": directory / "stream",
    }
    for key, value in {**local, **(overrides or {}), **dotted}.items():
        _set_dotted(tree, key, str(value) if isinstance(value, Path) else value)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "smarttrader.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path
