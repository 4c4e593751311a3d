"""Where the drain stands: offsets committed to the lake against the stream's end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
from smarttrader_cli.stream.backend import open_backend
from smarttrader_cli.stream.offsets import configured_offsets

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake


def stream_status(config: Config, lake: Lake) -> list[dict[str, Any]]:
    """One row per partition: committed offset (txn version + 1), end offset, lag."""
    stream = config.stream
    backend = open_backend(stream)
    ends = backend.end_offsets()
    offsets = configured_offsets(stream, backend)
    partitions = sorted(ends)
    if offsets is not None and lake.exists(WEBHOOK_EVENTS):
        committed = offsets.starts(lake.table(WEBHOOK_EVENTS), partitions)
    else:
        committed = dict.fromkeys(partitions, 0)
    return [
        {
            "partition": p,
            "committed_offset": committed[p],
            "end_offset": ends[p],
            "lag": max(0, ends[p] - committed[p]),
        }
        for p in partitions
    ]
