"""gold.token_flows kept current within seconds by `st follow`: the (token, window) buckets
new smart-wallet legs touched, recomputed from silver.webhook_swaps and replaced in one commit.

One definition: the buckets are computed by the dbt model `st gold flows` builds
(token_flows.sql over smart_legs.sql), compiled by dbt with a placeholder `flows_since`
that becomes a query parameter (once per project and config: kept in the state dir), and
run by DuckDB over silver restricted to the touched tokens and windows. A bucket here is the stage's bucket of the same silver, and
a change to the model changes both; a hand-written copy of the SQL could drift, and a dbt
build every few seconds would cost ~10 s of CPU each.

The touched tokens × touched windows are recomputed and replaced (delete + insert in one
commit), so a bucket that no longer has smart legs goes too. Only windows of the stage's
range (from flows_since(now)) are touched; older ones are the stage's concern as well. It
runs under the `gold.flows` lock as the stage does (a cron `st gold flows` holding it: the
buckets wait for the next round) and writes no ops.runs row (one every few seconds would
swamp the ledger): its commits carry follow's run id.

Commits: at most one per `follow.flows_live_seconds`, and only when smart legs came. Opening
the table reads its last checkpoint and fewer than `checkpoint_interval` commits after it
(lake/properties.py), however many there were; the log keeps the commits of
logRetentionDuration, and each commit's replaced files wait for `st ops compact`'s vacuum.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.tables import TOKEN_FLOWS

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from smarttrader_cli.engines.dbt_runner import DbtTarget
    from smarttrader_cli.lake.store import CommitMeta, Lake
    from smarttrader_cli.stages.contract import StageContext

log = logging.getLogger("st.follow")

# `flows_since` as the model is compiled with; its literal becomes the parameter $since.
PLACEHOLDER = datetime(1970, 1, 1, tzinfo=UTC)
MODEL = "token_flows"
SKIPPED = {"target", "logs", "dbt_packages"}  # dbt's own output, if run in the project


class LiveFlows:
    """The touched buckets of gold.token_flows, recomputed on demand (one thread uses it)."""

    def __init__(self, ctx: StageContext, meta: CommitMeta) -> None:
        self.ctx = ctx
        self.meta = meta
        self._sql: str | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def touched(self, legs: pa.Table) -> set[tuple[str, int]]:
        """The (token, window start as unix seconds) buckets of `legs` (silver rows) that
        the model counts: smart wallets' buys and sells of a token that is not a quote
        asset (the filters of smart_legs.sql)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not legs.num_rows:
            return set()
        quotes = pa.array(list(self.ctx.config.pnl.quote_assets), pa.string())
        keep = pc.and_(
            pc.and_(
                pc.fill_null(legs.column("is_smart_wallet"), False),
                pc.is_in(legs.column("direction"), pa.array(["buy", "sell"])),
            ),
            pc.invert(pc.fill_null(pc.is_in(legs.column("token_address"), quotes), False)),
        )
        kept = legs.filter(pc.fill_null(keep, False)).select(["token_address", "event_time"])
        width = self.ctx.config.flows.window_minutes * 60
        seconds = pc.divide(pc.cast(kept.column("event_time"), pa.int64()), 1_000_000)
        tokens = kept.column("token_address").to_pylist()
        return {
            (t, s - s % width)
            for t, s in zip(tokens, seconds.to_pylist(), strict=True)
            if t is not None and s is not None
        }

    def commit(self, buckets: set[tuple[str, int]]) -> int:
        """Recompute `buckets` (those in the stage's range) and replace them in one commit,
        under the gold.flows lock (LockHeldError while a stage run holds it); the rows
        written."""
        from smarttrader_cli.lake.sql import in_list
        from smarttrader_cli.ops.locks import stage_lock
        from smarttrader_cli.stages.gold import FLOWS_STAGE, flows_since, with_run_columns

        since = int(flows_since(self.ctx.config).timestamp())
        buckets = {(t, w) for t, w in buckets if w >= since}
        if not buckets:
            return 0
        tokens = sorted({t for t, _ in buckets})
        windows = [datetime.fromtimestamp(w, UTC) for w in sorted({w for _, w in buckets})]
        lake, state_dir = self.ctx.lake, self.ctx.config.runtime.state_dir
        with stage_lock(state_dir, FLOWS_STAGE, self.meta.run_id):
            rows = self._compute(tokens, windows)
            table = with_run_columns(rows, TOKEN_FLOWS, "computed_at", self.meta.run_id)
            predicate = (
                f"{in_list('t.token_address', tokens)} AND {in_list('t.window_start', windows)}"
            )
            lake.merge(TOKEN_FLOWS, table, self.meta, delete_predicate=predicate)
        return table.num_rows

    def prepare(self) -> None:
        """Compile the model and open DuckDB now (start-up), not at the first commit."""
        self._model_sql()
        self._connection()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _compute(self, tokens: list[str], windows: list[datetime]) -> pa.Table:
        """The model's rows for every token × window given, from silver as it is now."""
        import pyarrow as pa

        con = self._connection()
        con.register("st_tokens", pa.table({"token_address": pa.array(tokens, pa.string())}))
        con.register(
            "st_windows",
            pa.table({"window_start": pa.array(windows, pa.timestamp("us", tz="UTC"))}),
        )
        try:
            return con.execute(
                f"select * from ({self._model_sql()}) as flows "
                "where token_address in (select token_address from st_tokens) "
                "and window_start in (select window_start from st_windows) "
                "order by window_start, token_address",
                {"since": min(windows)},
            ).to_arrow_table()
        finally:
            con.unregister("st_tokens")
            con.unregister("st_windows")

    def _connection(self) -> duckdb.DuckDBPyConnection:
        from smarttrader_cli.lake.query import duckdb_config, load_extensions, s3_secret_sql
        from smarttrader_cli.ops.resources import budget_for

        if self._con is None:
            import duckdb

            budget = budget_for(self.ctx.config.memory, what="follow.flows")
            con = duckdb.connect(
                ":memory:", config=duckdb_config(budget.memory_limit_mb, budget.threads)
            )
            load_extensions(con, remote=self.ctx.lake.is_remote)
            if self.ctx.lake.is_remote:
                con.execute(s3_secret_sql(self.ctx.lake.storage_options))
            self._con = con
        return self._con

    def _model_sql(self) -> str:
        """token_flows.sql as dbt compiles it, `flows_since` the parameter $since."""
        if self._sql is None:
            from smarttrader_cli.engines.dbt_runner import lake_root_var
            from smarttrader_cli.lake.sql import literal
            from smarttrader_cli.stages.gold import FLOWS_STAGE, gold_vars, target_for

            config, lake = self.ctx.config, self.ctx.lake
            target = target_for(self.ctx, "gold_flows_live", FLOWS_STAGE)
            compiled = _compiled(
                target, lake, gold_vars(config, lake_root_var(lake), since=PLACEHOLDER)
            )
            placeholder = literal(PLACEHOLDER)
            if compiled.count(placeholder) != 1:
                raise StageError(
                    f"the dbt model {MODEL} names flows_since {compiled.count(placeholder)} "
                    "times, not once: follow cannot restrict it to the touched windows"
                )
            self._sql = compiled.replace(placeholder, "$since")
        return self._sql


def _compiled(target: DbtTarget, lake: Lake, variables: dict[str, Any]) -> str:
    """The model compiled by dbt, kept in the target's folder under a hash of the dbt
    project's files and the vars: a restart reuses it (dbt's import and first parse
    take 5-20 s of CPU on 2 cores), a changed model or config compiles it again."""
    from smarttrader_cli.engines.dbt_runner import dbt_compile, project_dir

    project = project_dir()
    digest = hashlib.sha256(json.dumps(variables, sort_keys=True).encode())
    for path in sorted(project.rglob("*")):
        parts = path.relative_to(project).parts
        if path.is_file() and not any(p.startswith(".") or p in SKIPPED for p in parts):
            digest.update("/".join(parts).encode() + b"\0" + path.read_bytes())
    kept = target.work_dir / f"{MODEL}-{digest.hexdigest()[:16]}.sql"
    if kept.is_file():
        return kept.read_text()
    compiled = dbt_compile(target, lake, MODEL, variables)
    for old in target.work_dir.glob(f"{MODEL}-*.sql"):
        old.unlink()
    tmp = kept.with_suffix(".tmp")
    tmp.write_text(compiled)
    tmp.replace(kept)
    return compiled
