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
    ledger: list[dict[str, Any]] = field(default_factory=list)  # ops.runs retention, compaction

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
        for entry in self.ledger:
            out.append({"kind": "ledger", "target": "ops.runs", **entry})
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
    if not log_dir.is_dir():
        return []
    logs = sorted(p for p in log_dir.rglob("*") if p.is_file())
    return _older_than("log", logs, retention_days, now)


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
    return _older_than("spool", published_spool_segments(spool_dir), retention_days, now)


def drained_stream_segments(
    config: Config, lake: Lake, retention_days: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Stream files every record of which is committed to bronze.webhook_events, older than
    the retention (the backend says which: local-log segments; none for kafka, whose
    broker has its own retention)."""
    from smarttrader_cli.stream.backend import open_backend

    drained = open_backend(config.stream).retention_candidates(lake)
    return _older_than("stream", drained, retention_days, now)


def _older_than(
    kind: str, paths: list[Path], retention_days: int, now: float | None
) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    found = []
    for path in paths:
        try:
            age = (now - path.stat().st_mtime) / DAY
        except FileNotFoundError:  # removed meanwhile (the webhook server deletes spool)
            continue
        if age > retention_days:
            found.append(_entry(kind, path, age))
    return found


def run_cleanup(config: Config, lake: Lake, *, dry_run: bool) -> CleanupReport:
    """Check disk, vacuum every table, and remove expired spool/stream segments and logs."""
    from smarttrader_cli.lake.maintenance import vacuum_tables

    report = CleanupReport(dry_run=dry_run)
    report.ledger = ledger_upkeep(config, lake, dry_run=dry_run)  # first: vacuum sees its files
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
            if entry["kind"] in ("spool", "stream"):
                from smarttrader_cli.stream.segment_index import remove

                remove(Path(entry["path"]))  # the segment's offset index goes with it
            log.info("removed %s %s", entry["kind"], entry["path"])
        report.removed.append(entry)
    # Measured last, so the levels reflect the space just freed.
    report.disk = disk_levels(config)
    for d in report.disk:
        if d.level != "ok":
            log.warning("disk %s: %.1f%% used on %s", d.level, d.percent, d.mount)
    return report


def ledger_upkeep(config: Config, lake: Lake, *, dry_run: bool) -> list[dict[str, Any]]:
    """Expire old rows of ops.runs, then compact its small files (one file per run)."""
    from smarttrader_cli.ops.ledger import Ledger

    ledger = Ledger(lake)
    action = "would remove" if dry_run else "removed"
    days = config.ops.runs_retention_days
    found = []
    expired = ledger.expire(days, dry_run=dry_run)
    if expired:
        found.append(
            {"action": f"{action} {expired} rows", "detail": f"runs started over {days} days ago"}
        )
    compacted = ledger.compact(config.ops.runs_compact_files, dry_run=dry_run)
    if compacted:
        verb = "would compact" if dry_run else "compacted"
        found.append({"action": f"{verb} {compacted} files", "detail": "into one"})
    return found


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
