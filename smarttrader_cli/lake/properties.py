"""The Delta table properties every lake table carries: checkpoints and log retention.

Opening a table replays its log from the last checkpoint, so with a checkpoint every
`checkpoint_interval` commits an open reads one checkpoint and fewer than that many
commits, however old the table. Each time delta-rs writes a checkpoint it also removes
the log entries older than delta.logRetentionDuration that the checkpoint covers
(delta.enableExpiredLogCleanup), so `_delta_log` holds a bounded window, not the
table's whole history. Time travel reaches back as far as that window.

delta.setTransactionRetentionDuration is never set: checkpoints would then drop the
`txn` actions older than it, and with them the stream offsets of a partition that has
been quiet that long (stream/offsets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TableProperties:
    """The properties `Lake.ensure_table` creates tables with and `st ops compact` applies."""

    checkpoint_interval: int = 20
    log_retention_hours: int = 168
    deleted_file_retention_hours: int = 168

    def as_delta(self) -> dict[str, str]:
        """The Delta configuration keys and values."""
        return {
            "delta.checkpointInterval": str(self.checkpoint_interval),
            "delta.logRetentionDuration": f"interval {self.log_retention_hours} hours",
            "delta.deletedFileRetentionDuration": (
                f"interval {self.deleted_file_retention_hours} hours"
            ),
            "delta.enableExpiredLogCleanup": "true",
        }

    def changes(self, configuration: Mapping[str, str]) -> dict[str, str]:
        """What a table whose configuration is `configuration` lacks or holds otherwise."""
        return {k: v for k, v in self.as_delta().items() if configuration.get(k) != v}
