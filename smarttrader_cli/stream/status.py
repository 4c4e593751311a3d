"""Where the drain stands: offsets committed to the lake against the stream's end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.offsets import configured_offsets

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.context import AppContext


def end_offsets(config: Config) -> dict[int, int]:
    """The stream's high watermark per partition."""
    if config.stream.backend == "kafka":
        from smarttrader_cli.stream.kafka_backend import kafka_end_offsets

        return kafka_end_offsets(config.stream)
    from smarttrader_cli.stream.local_log import LocalLog

    return LocalLog(config.stream).end_offsets()


def stream_status(app: AppContext) -> list[dict[str, Any]]:
    """One row per partition: committed offset (txn version + 1), end offset, lag."""
    config = app.config
    ends = end_offsets(config)
    lake = app.lake
    table = lake.table(WEBHOOK_EVENTS) if lake.exists(WEBHOOK_EVENTS) else None
    offsets = configured_offsets(config.stream)
    rows = []
    for partition in sorted(ends):
        version = (
            offsets.committed(table, partition)
            if table is not None and offsets is not None
            else None
        )
        committed = 0 if version is None else version + 1
        rows.append(
            {
                "partition": partition,
                "committed_offset": committed,
                "end_offset": ends[partition],
                "lag": max(0, ends[partition] - committed),
            }
        )
    return rows
