"""One parsed batch into the lake: its dead letters, then its events and offsets in one commit.

Dead letters (messages that are not a storable event, and records the local log could not
read intact) go to their own table, bronze.webhook_dead_letters, so they cannot share the
events commit. They are written first, as a merge that only inserts keys
(stream_partition, stream_offset) not already there, and only then the events commit
carries the offsets past them. A kill between the two leaves dead letters whose offsets are
not yet committed; the re-run reads the same messages, its dead-letter merge inserts
nothing new, and the events commit follows.

The table holds one row per signature: Helius redelivers and the spool may republish.
Repeats within a batch were dropped as it was parsed (batch.py); against the table,
signatures.py checks the whole table (a redelivery may carry another slot), keeping the
commit an append, never a table-wide merge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from smarttrader_cli.lake.tables import WEBHOOK_DEAD_LETTERS, WEBHOOK_EVENTS
from smarttrader_cli.stream.batch import Prepared, finish
from smarttrader_cli.stream.signatures import SignatureIndex

if TYPE_CHECKING:
    from pathlib import Path

    from deltalake import DeltaTable

    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.stream.offsets import StreamOffsets


class EventsWriter:
    """Commits batches to bronze.webhook_events, each against the snapshot given.

    Used from one thread at a time (the drain's writer thread).
    """

    def __init__(self, lake: Lake, meta: CommitMeta, state_dir: Path | None = None) -> None:
        self.lake = lake
        self.meta = meta
        self.last: tuple[pa.Table, int] | None = None  # the last commit's rows and version
        self.signatures = SignatureIndex(
            lake.uri(WEBHOOK_EVENTS), lake.storage_options, store_dir=state_dir
        )

    def write(
        self,
        prepared: Prepared,
        snapshot: DeltaTable,
        keys: StreamOffsets,
        partitions: Callable[[], list[int]],
    ) -> int:
        """Dead letters, then rows + offsets in one commit; the rows written.

        The commit is conflict-checked only against commits made after `snapshot`; offsets
        another drain committed at or before it (the reader was behind) are caught here,
        from the snapshot's own application transactions (OffsetsAlreadyCommitted).
        `partitions` lists the stream's partitions, asked for only by the commit that
        carries older offsets over to this version's ids.
        """
        keys.claim(snapshot, prepared.first)
        fresh = self.signatures.drop_existing(snapshot, prepared.events)
        now = datetime.now(UTC)
        if prepared.dead:
            table = pa.Table.from_pylist(
                [dict(d, ingested_at=now, run_id=self.meta.run_id) for d in prepared.dead],
                schema=WEBHOOK_DEAD_LETTERS.schema,
            )
            self.lake.merge(WEBHOOK_DEAD_LETTERS, table, self.meta, update_existing=False)
        txns = keys.txns(snapshot, prepared.last, [] if keys.migrated(snapshot) else partitions())
        rows = finish(fresh, now, self.meta.run_id)
        before = snapshot.version()
        self.lake.append(WEBHOOK_EVENTS, rows, self.meta, txns, snapshot=snapshot)
        self.signatures.wrote(before, snapshot.version())
        self.last = (rows, snapshot.version())
        return rows.num_rows
