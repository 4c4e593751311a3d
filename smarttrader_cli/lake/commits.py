"""The metadata every commit of `st` carries, and reading it back from either engine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CommitMeta:
    """What every commit records about the run that made it."""

    run_id: str
    stage: str
    config_hash: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self, rows: int, operation: str) -> dict[str, str]:
        meta = {
            "run_id": self.run_id,
            "stage": self.stage,
            "config_hash": self.config_hash,
            "st_operation": operation,
            "rows": str(rows),
        }
        meta.update({k: str(v) for k, v in self.extra.items()})
        return meta


def with_user_metadata(entry: dict[str, Any]) -> dict[str, Any]:
    """A commit's history entry with its CommitMeta keys at the top level.

    delta-rs writes them there; delta-spark can only write one `userMetadata` string,
    which holds them as JSON (engines/spark_pnl.py).
    """
    raw = entry.get("userMetadata")
    if not isinstance(raw, str):
        return entry
    try:
        decoded = json.loads(raw)
    except ValueError:
        return entry
    if not isinstance(decoded, dict):
        return entry
    return {**{k: v for k, v in decoded.items() if k not in entry}, **entry}
