"""`st ops compact` as a stage: table properties, compaction, checkpoints, log cleanup."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smarttrader_cli.stages.contract import StageResult, run_result, stage

if TYPE_CHECKING:
    from smarttrader_cli.ops.runs import StageRun
    from smarttrader_cli.stages.contract import StageContext

STAGE = "ops.compact"


def _args(ctx: StageContext) -> dict[str, Any]:
    """Check the configured tables before the lock (an unknown name is a config error)."""
    from smarttrader_cli.errors import ConfigError, TableNotFoundError
    from smarttrader_cli.lake.tables import table_spec

    for name in ctx.config.ops.compact_tables:
        try:
            table_spec(name)
        except TableNotFoundError as exc:
            raise ConfigError(f"ops.compact_tables: {exc}") from None
    return {"tables": list(ctx.config.ops.compact_tables)}


@stage(STAGE, writes="compacted and checkpointed tables", command="st ops compact", prepare=_args)
def run(ctx: StageContext, current: StageRun) -> StageResult:
    """Compact `ops.compact_tables` (and set the lake's table properties on every table);
    rows_in counts the small files found, rows_out the files removed by compaction."""
    from smarttrader_cli.ops.compact import run_compaction

    rows = run_compaction(ctx.config, ctx.lake, current.meta)
    current.rows_in = sum(r.get("small_files", 0) for r in rows)
    current.rows_out = sum(r.get("files_removed", 0) for r in rows)
    compacted = [r["table"] for r in rows if r.get("checkpoint") is not None]
    return run_result(current, rows, compacted=len(compacted))
