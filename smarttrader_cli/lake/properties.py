"""The Delta table properties every lake table carries: checkpoints and log retention.

Opening a table replays its log from the last checkpoint, so with a checkpoint every
`checkpoint_interval` commits an open reads one checkpoint and fewer than that many
commits, however old the table. Each time delta-rs writes a checkpoint it also removes
the log entries older than delta.logRetentionDuration that the checkpoint covers
(delta.enableExpiredLogCleanup), so `_delta_log` holds a bounded window, not the
table's whole history. Time travel reaches back as far as that window.

Tables written every few minutes (`TableSpec.frequent`: the stream's, the run ledger)
keep a shorter window: delta-rs lists the whole `_delta_log` folder of a local table on
every open and several times a commit (a stat per entry), so a week of 5-minute commits
(2,000 and more) makes each of their commits cost about twice a young table's. Their
checkpoints keep the records of removed files as long (every compaction removes a
drain's worth of files an hour, and every open reads those records); the full vacuum
(Lake.vacuum) still leaves a file on disk `lake.vacuum_retention_hours` after it was
written, and at least that shorter window after it was removed.

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
    log_retention_hours: float = 168
    deleted_file_retention_hours: float = 168
    frequent_log_retention_hours: float = 24

    def as_delta(self, frequent: bool = False) -> dict[str, str]:
        """The Delta configuration keys and values (`frequent`: of a table written every
        few minutes)."""
        log_hours, removed_hours = self.log_retention_hours, self.deleted_file_retention_hours
        if frequent:
            log_hours = self.frequent_log_retention_hours
            removed_hours = min(removed_hours, log_hours)
        return {
            "delta.checkpointInterval": str(self.checkpoint_interval),
            "delta.logRetentionDuration": interval(log_hours),
            "delta.deletedFileRetentionDuration": interval(removed_hours),
            "delta.enableExpiredLogCleanup": "true",
        }

    def changes(self, configuration: Mapping[str, str], frequent: bool = False) -> dict[str, str]:
        """What a table whose configuration is `configuration` lacks or holds otherwise."""
        wanted = self.as_delta(frequent)
        return {k: v for k, v in wanted.items() if configuration.get(k) != v}


def interval(hours: float) -> str:
    """A Delta duration of `hours`: whole hours as hours, otherwise whole seconds."""
    if float(hours).is_integer():
        return f"interval {int(hours)} hours"
    return f"interval {max(1, round(hours * 3600))} seconds"
