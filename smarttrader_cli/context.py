"""What every command shares: the loaded config and the lake, built on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smarttrader_cli.config import LoadedConfig
    from smarttrader_cli.lake.store import Lake


@dataclass
class AppContext:
    """Global options plus lazily loaded config and lake."""

    config_path: Path | None = None
    log_format: str = "text"
    verbose: int = 0
    quiet: bool = False
    overrides: dict[str, str] = field(default_factory=dict)

    @cached_property
    def loaded(self) -> LoadedConfig:
        from smarttrader_cli.config import load_config

        return load_config(self.config_path)

    @property
    def config(self):  # type: ignore[no-untyped-def]
        return self.loaded.config

    @cached_property
    def lake(self) -> Lake:
        from smarttrader_cli.lake.store import Lake

        return Lake.from_config(self.loaded)
