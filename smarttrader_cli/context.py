"""What every command shares: the global options, and the config and lake built on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarttrader_cli.config import LoadedConfig
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake


@dataclass
class AppContext:
    """Global options plus lazily loaded config and lake."""

    config_path: Path | None = None
    log_format: str = "text"
    verbose: int = 0
    quiet: bool = False

    @cached_property
    def loaded(self) -> LoadedConfig:
        from smarttrader_cli.config import load_config

        return load_config(self.config_path)

    @property
    def config(self) -> Config:
        return self.loaded.config

    @cached_property
    def lake(self) -> Lake:
        from smarttrader_cli.lake.store import Lake

        return Lake.from_config(self.loaded)
