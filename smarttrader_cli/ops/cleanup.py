"""`st ops cleanup`: disk usage against thresholds, Delta vacuum, old spool segments and logs."""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smarttrader_cli.config.schema import Config
    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.ops.cleanup")
DAY = 86400.0


@dataclass(frozen=True)
class DiskLevel:
    """How full the filesystem under one data directory is."""

    path: str
    mount: str
    percent: float
    free_mb: int
    warning: float
    critical: float

    @property
    def level(self) -> str:
        if self.percent >= self.critical:
            return "critical"
        if self.percent >= self.warning:
            return "warning"
        return "ok"


@dataclass
class CleanupReport:
    """What cleanup found and removed (or, in a dry run, would remove)."""

    dry_run: bool
    disk: list[DiskLevel] = field(default_factory=list)
    vacuum: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def critical(self) -> bool:
        return any(d.level == "critical" for d in self.disk)

    def rows(self) -> list[dict[str, Any]]:
        """One row per finding, for printing."""
        action = "would remove" if self.dry_run else "removed"
        out: list[dict[str, Any]] = [
            {
                "kind": "disk",
                "target": d.path,
                "action": d.level,
                "detail": f"{d.percent:.1f}% used of {d.mount}, {d.free_mb} MB free "
                f"(warning {d.warning:g}%, critical {d.critical:g}%)",
            }
            for d in self.disk
        ]
        for v in self.vacuum:
            out.append(
                {
                    "kind": "vacuum",
                    "target": v["table"],
                    "action": f"{action} {v['files']} files",
                    "detail": f"older than {v['retention_hours']} h",
                }
            )
        for r in self.removed:
            out.append(
                {
                    "kind": r["kind"],
                    "target": r["path"],
                    "action": action,
                    "detail": f"{r['bytes']} bytes, {r['age_days']:.1f} days old",
                }
            )
        return out


def data_dirs(config: Config) -> list[Path]:
    """The local directories `st` writes to (the lake root only when it is local)."""
    dirs = [
        config.runtime.state_dir,
        config.runtime.log_dir,
        config.webhook.spool_dir,
        config.stream.local_dir,
    ]
    if "://" not in config.lake.root:
        dirs.insert(0, config.lake.root)
    return [Path(d) for d in dirs]


def disk_levels(config: Config) -> list[DiskLevel]:
    """Disk usage of each distinct filesystem under the data directories."""
    import psutil

    seen: dict[str, DiskLevel] = {}
    for path in data_dirs(config):
        existing = _existing_ancestor(path)
        usage = psutil.disk_usage(str(existing))
        mount = _mount_point(existing)
        if mount in seen:
            continue
        seen[mount] = DiskLevel(
            path=str(path),
            mount=mount,
            percent=float(usage.percent),
            free_mb=int(usage.free / 2**20),
            warning=config.ops.disk_warning_percent,
            critical=config.ops.disk_critical_percent,
        )
    return list(seen.values())


def old_logs(log_dir: Path, retention_days: int, now: float | None = None) -> list[dict[str, Any]]:
    """Log files under `log_dir` last modified more than `retention_days` ago."""
    now = time.time() if now is None else now
    if not log_dir.is_dir():
        return []
    found = []
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()):
        age = (now - path.stat().st_mtime) / DAY
        if age > retention_days:
            found.append(_entry("log", path, age))
    return found


def published_spool_segments(spool_dir: Path) -> list[Path]:
    """Spool segments whose every record is below the spool's cursor (acknowledged by the broker).

    The webhook server deletes these itself after each ack; leftovers come from a crash
    between moving the cursor and deleting. The segment holding the cursor is never listed.
    """
    from smarttrader_cli.stream.segments import list_segments, segment_name
    from smarttrader_cli.stream.spool import CURSOR

    cursor_path = spool_dir / CURSOR
    if not cursor_path.is_file():
        return []
    try:
        cursor = int(cursor_path.read_text().strip() or 0)
    except ValueError:
        log.warning("unreadable spool cursor %s; keeping every spool segment", cursor_path)
        return []
    bases = list_segments(spool_dir)
    return [spool_dir / segment_name(b) for b, nxt in itertools.pairwise(bases) if nxt <= cursor]


def old_spool_segments(
    spool_dir: Path, retention_days: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Spool segments fully re-published to the broker and older than the retention."""
    now = time.time() if now is None else now
    found = []
    for path in published_spool_segments(spool_dir):
        try:
            age = (now - path.stat().st_mtime) / DAY
        except FileNotFoundError:  # the server deleted it meanwhile
            continue
        if age > retention_days:
            found.append(_entry("spool", path, age))
    return found


def drained_stream_segments(
    config: Config, lake: Lake, retention_days: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Local-log segments whose every record is committed to bronze.webhook_events and
    older than the retention.

    Committed means by this log's own offsets (its topic and stream id, see
    stream/offsets.py): offsets of another stream, or the topic-less ones of an older `st`
    before the first drain of this version has carried them over, remove nothing; nor do
    offsets past the log's end (they cannot be this log's). The segment being written is
    never listed; with the kafka backend the broker's own retention applies and nothing is
    listed.
    """
    from smarttrader_cli.lake.tables import WEBHOOK_EVENTS
    from smarttrader_cli.stream.local_log import LocalLog
    from smarttrader_cli.stream.offsets import configured_offsets
    from smarttrader_cli.stream.segments import end_offset, list_segments, segment_name

    stream = config.stream
    if stream.backend != "local":
        return []
    topic = LocalLog(stream)
    keys = configured_offsets(stream)
    if keys is None or not lake.exists(WEBHOOK_EVENTS):
        return []
    table = lake.table(WEBHOOK_EVENTS)
    now = time.time() if now is None else now
    found = []
    for partition in range(topic.partitions):
        version = keys.own(table, partition)
        if version is None:
            continue
        directory = topic.partition_dir(partition)
        if version >= end_offset(directory):
            log.warning(
                "offsets stored for %s partition %d (through %d) are past its end: keeping "
                "its segments", topic.root, partition, version,
            )  # fmt: skip
            continue
        bases = list_segments(directory)
        for base, next_base in itertools.pairwise(bases):
            if next_base > version + 1:
                break
            path = directory / segment_name(base)
            try:
                age = (now - path.stat().st_mtime) / DAY
            except FileNotFoundError:
                continue
            if age > retention_days:
                found.append(_entry("stream", path, age))
    return found


def run_cleanup(config: Config, lake: Lake, *, dry_run: bool) -> CleanupReport:
    """Check disk, vacuum every table, and remove expired spool/stream segments and logs."""
    from smarttrader_cli.lake.maintenance import vacuum_tables

    report = CleanupReport(dry_run=dry_run)
    retention = config.lake.vacuum_retention_hours
    for row in vacuum_tables(lake, None, retention, dry_run):
        report.vacuum.append({**row, "retention_hours": retention})
    now = time.time()
    candidates = old_spool_segments(
        Path(config.webhook.spool_dir), config.ops.spool_retention_days, now
    )
    candidates += drained_stream_segments(config, lake, config.ops.stream_retention_days, now)
    candidates += old_logs(Path(config.runtime.log_dir), config.ops.log_retention_days, now)
    for entry in candidates:
        if not dry_run:
            try:
                os.unlink(entry["path"])
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            log.info("removed %s %s", entry["kind"], entry["path"])
        report.removed.append(entry)
    # Measured last, so the levels reflect the space just freed.
    report.disk = disk_levels(config)
    for d in report.disk:
        if d.level != "ok":
            log.warning("disk %s: %.1f%% used on %s", d.level, d.percent, d.mount)
    return report


def _entry(kind: str, path: Path, age_days: float) -> dict[str, Any]:
    return {"kind": kind, "path": str(path), "bytes": path.stat().st_size, "age_days": age_days}


def _existing_ancestor(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> str:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return str(path)
