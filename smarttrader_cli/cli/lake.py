"""`st lake`: inspect and maintain the Delta tables."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from smarttrader_cli.cli.options import FormatOption, LimitOption, app_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(help="Inspect and maintain the lake's Delta tables.", no_args_is_help=True)

TableArg = Annotated[str, typer.Argument(help="Table as layer.table, e.g. silver.wallet_pnl.")]


@app.command("tables")
def tables(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """List every table with its version, rows, size and last commit.

    Example: st lake tables --format json
    """
    from smarttrader_cli.lake.inspect import table_summaries

    lake = app_context(ctx).lake
    emit(table_summaries(lake), fmt, title=f"lake {lake.root}")


@app.command("history")
def history(
    ctx: typer.Context,
    table: TableArg,
    limit: LimitOption = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show a table's commits with run id, stage and row counts.

    Example: st lake history bronze.wallet_trades --limit 5
    """
    from smarttrader_cli.lake.inspect import table_history
    from smarttrader_cli.lake.tables import table_spec

    spec = table_spec(table)
    emit(table_history(app_context(ctx).lake, spec, limit), fmt, title=f"{spec.name} history")


@app.command("show")
def show(
    ctx: typer.Context,
    table: TableArg,
    version: Annotated[
        int | None, typer.Option("--version", help="Read this table version.")
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Read the table as it was at this time (ISO 8601, UTC)."),
    ] = None,
    limit: LimitOption = 20,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show rows of a table, now or as of a version or time (time travel).

    Example: st lake show silver.wallet_pnl --version 3 --limit 10
    """
    from datetime import UTC

    from smarttrader_cli.errors import UsageError
    from smarttrader_cli.lake.inspect import show_rows
    from smarttrader_cli.lake.tables import table_spec

    if version is not None and as_of is not None:
        raise UsageError("give --version or --as-of, not both")
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    spec = table_spec(table)
    rows = show_rows(app_context(ctx).lake, spec, version=version, as_of=as_of, limit=limit)
    emit(rows, fmt, [f.name for f in spec.schema], title=spec.name)


@app.command("query")
def query(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help="SELECT over tables named layer.table.")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Run read-only SQL (DuckDB) over the lake's tables.

    Only SELECT statements run (WITH, DESCRIBE, SHOW and SUMMARIZE too); COPY, ATTACH,
    CREATE, INSERT, SET and every other statement are refused, and DuckDB opens no file:
    the tables are the only thing it can read.

    Example: st lake query "SELECT count(*) AS n FROM bronze.wallet_trades" --format json
    """
    from smarttrader_cli.lake.query import read_query

    columns, rows = read_query(app_context(ctx).lake, sql)
    emit([dict(zip(columns, r, strict=True)) for r in rows], fmt, columns)


@app.command("vacuum")
def vacuum(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="One table; default all.")] = None,
    retention_hours: Annotated[
        int | None, typer.Option("--retention-hours", help="Default: lake.vacuum_retention_hours.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List files, delete nothing.")] = False,
) -> None:
    """Delete files no longer referenced by any version younger than the retention.

    Example: st lake vacuum --dry-run
    """
    from smarttrader_cli.lake.maintenance import vacuum_tables

    app_ctx = app_context(ctx)
    hours = (
        retention_hours
        if retention_hours is not None
        else app_ctx.config.lake.vacuum_retention_hours
    )
    rows = vacuum_tables(app_ctx.lake, [table] if table else None, hours, dry_run)
    emit(rows, OutputFormat.table, title="vacuum (dry run)" if dry_run else "vacuum")


@app.command("optimize")
def optimize(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="One table; default all.")] = None,
) -> None:
    """Compact small files into larger ones (one commit per table).

    Example: st lake optimize bronze.webhook_events
    """
    from smarttrader_cli.lake.maintenance import optimize_tables
    from smarttrader_cli.ops.locks import stage_lock

    app_ctx = app_context(ctx)
    # Under `st ops compact`'s lock: delta-rs commits both of two compactions of one file.
    with stage_lock(app_ctx.config.runtime.state_dir, "ops.compact", "st lake optimize"):
        rows = optimize_tables(app_ctx.lake, [table] if table else None)
    emit(rows, OutputFormat.table, title="optimize")


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Argument(help="One table; default all.")] = None,
) -> None:
    """Bring tables written by an older st up to the current schema.

    New columns are added and filled (e.g. bronze.wallet_trades gains `fill_id` = ''
    for every row it already had). Stages do this by themselves on their first write;
    this command does it for every table at once, and is safe to run again. A table
    written before its partitioning (silver.webhook_swaps by event day,
    bronze.webhook_events by the day events were received) is rewritten into it once,
    while no stage writes it (exit 75 if one runs).

    Example: st lake migrate
    """
    from smarttrader_cli.lake.commits import CommitMeta
    from smarttrader_cli.lake.maintenance import migrate_tables
    from smarttrader_cli.ops.runs import new_run_id

    app = app_context(ctx)
    meta = CommitMeta(new_run_id(), "lake.migrate", app.loaded.hash)
    rows = migrate_tables(app.lake, [table] if table else None, app.config.runtime.state_dir, meta)
    emit(rows, OutputFormat.table, title="migrate")
