"""The drain's stored offsets: the one home of their application-transaction ids and rule.

Offsets live in the Delta log of bronze.webhook_events as `txn` actions (as in
kafka-delta-ingest): one per partition, version = the last offset committed, written in
the same commit as the rows. The app id names the drain group, the topic and the
stream's identity, `<group>/<topic>/<identity>/<partition>`, so offsets are never read
against another stream: a changed `stream.topic`, a local log deleted and created again
(a new stream id) or a Kafka topic re-created (a new topic id) starts at its own
beginning.

An older `st` stored `<group>-<partition>` (no topic, no identity). Those are read as the
configured topic's offsets until this version's first commit, which carries them over to
the new ids and records MARKER (`<group>/offsets`); from then on they are never read, so
a stream created later cannot inherit them.

A partition committed through offset `v` (the txn version) continues at `v + 1`:
`resume_at` is that rule, for the drain, `st stream status` and `st ops cleanup` alike.

A stored offset past the stream's end means it belongs to another stream (one recreated
under the same identity, or migrated old offsets of a log that was recreated before the
upgrade): the drain stops with StageError rather than skip what the stream holds.
`st stream drain --reset-offsets` records new offsets at the stream's start instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smarttrader_cli.errors import StageError

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from smarttrader_cli.config.schema import StreamConfig
    from smarttrader_cli.stream.backend import Backend

log = logging.getLogger("st.stream.offsets")

FORMAT = 2  # the MARKER's version: offsets keyed by topic and stream identity
RESET_HINT = (
    "run `st stream drain --reset-offsets` to record new offsets at the stream's start "
    "(what it still holds is read again; signatures already in the table are not written twice)"
)


class OffsetsAlreadyCommitted(Exception):
    """The snapshot a batch would commit on already holds some of its offsets: another
    drain committed them (the drain drops the batch and re-seeks)."""


def resume_at(version: int | None) -> int:
    """Where a partition committed through offset `version` continues (0: nothing yet)."""
    return 0 if version is None else version + 1


def legacy_app_id(group: str, partition: int) -> str:
    """The app id an older `st` stored a partition's offset under."""
    return f"{group}-{partition}"


@dataclass(frozen=True)
class StreamOffsets:
    """Where one drain group stands on one stream (topic + identity)."""

    group: str
    topic: str
    identity: str

    def app_id(self, partition: int) -> str:
        """The Delta application-transaction id of one partition of this stream."""
        return f"{self.group}/{self.topic}/{self.identity}/{partition}"

    @property
    def marker(self) -> str:
        return f"{self.group}/offsets"

    def migrated(self, snapshot: DeltaTable) -> bool:
        """True once this version's ids were committed for the group (old ids are then dead)."""
        return snapshot.transaction_version(self.marker) is not None

    def own(self, snapshot: DeltaTable, partition: int) -> int | None:
        """The last offset committed under this stream's own id (None: none yet)."""
        return snapshot.transaction_version(self.app_id(partition))

    def committed(self, snapshot: DeltaTable, partition: int) -> int | None:
        """The last offset committed for `partition`: this stream's own, else (before the
        migration) the one an older `st` stored for the group."""
        version = self.own(snapshot, partition)
        if version is None and not self.migrated(snapshot):
            version = snapshot.transaction_version(legacy_app_id(self.group, partition))
        return version

    def starts(self, snapshot: DeltaTable, partitions: list[int]) -> dict[int, int]:
        """The offset each partition continues at (`resume_at` its committed offset)."""
        return {p: resume_at(self.committed(snapshot, p)) for p in partitions}

    def claim(self, snapshot: DeltaTable, first: dict[int, int]) -> None:
        """OffsetsAlreadyCommitted if a batch starting at `first` (partition → offset)
        overlaps what `snapshot` already holds committed."""
        for partition, offset in first.items():
            done = self.committed(snapshot, partition)
            if done is not None and done >= offset:
                raise OffsetsAlreadyCommitted(
                    f"partition {partition} is committed through offset {done}, "
                    f"this batch starts at {offset}"
                )

    def check(
        self,
        snapshot: DeltaTable,
        starts: dict[int, int],
        bounds: dict[int, tuple[int, int]],
        stream: str,
    ) -> None:
        """StageError if a partition would start past the stream's end (skipping all it
        holds); a warning for a stream with messages and no offsets of its own yet."""
        ahead = {
            p: (s, bounds[p][1]) for p, s in starts.items() if p in bounds and s > bounds[p][1]
        }
        if ahead:
            detail = ", ".join(
                f"partition {p} at offset {start}, its end is {end}"
                for p, (start, end) in sorted(ahead.items())
            )
            raise StageError(
                f"the offsets stored in bronze.webhook_events for {stream} are past its end "
                f"({detail}): the stream was recreated or stream.topic changed, and draining "
                f"from there would skip what it holds; {RESET_HINT}"
            )
        if not self.migrated(snapshot):
            return
        new = [
            p
            for p in starts
            if p in bounds and bounds[p][1] > 0 and self.committed(snapshot, p) is None
        ]
        if new:
            log.warning(
                "no offsets stored yet for partitions %s of %s (%s %s): a new stream, or one "
                "recreated or renamed since the last drain; reading them from their start",
                new, stream, self.topic, self.identity,
            )  # fmt: skip

    def txns(
        self, snapshot: DeltaTable, last: dict[int, int], partitions: list[int]
    ) -> list[tuple[str, int]]:
        """The txn actions of a commit that consumed through `last` (partition → offset).

        The first commit of this version also carries every other partition's old offset
        over to its new id, and records the marker.
        """
        txns = dict(last)
        if not self.migrated(snapshot):
            for p in partitions:
                if p not in txns and self.own(snapshot, p) is None:
                    version = snapshot.transaction_version(legacy_app_id(self.group, p))
                    if version is not None:
                        txns[p] = version
        out = [(self.app_id(p), o) for p, o in sorted(txns.items())]
        if not self.migrated(snapshot):
            out.append((self.marker, FORMAT))
        return out

    def reset_txns(self, starts: dict[int, int]) -> list[tuple[str, int]]:
        """The txn actions that make each partition continue at `starts[partition]`."""
        return [(self.app_id(p), s - 1) for p, s in sorted(starts.items())] + [
            (self.marker, FORMAT)
        ]


def configured_offsets(config: StreamConfig, backend: Backend) -> StreamOffsets | None:
    """The offset ids of the configured stream, for readers other than the drain (status);
    None while the stream has no identity yet (a local log not created, or created by an
    older `st` and not opened since). Creates nothing."""
    identity = backend.identity()
    return None if identity is None else StreamOffsets(config.group_id, config.topic, identity)
