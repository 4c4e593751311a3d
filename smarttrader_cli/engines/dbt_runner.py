"""dbt-duckdb in-process: a profile generated from the config, vars from the config, offline."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import yaml

from smarttrader_cli.errors import StageError
from smarttrader_cli.lake.query import extension_path

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from smarttrader_cli.lake.store import Lake

log = logging.getLogger("st.dbt")
dbt_log = logging.getLogger("st.dbt.output")

PROFILE = "smarttrader"
# dbt's result statuses that fail a build.
_BAD_STATUSES = {"error", "fail", "runtime error", "skipped"}


def project_dir() -> Path:
    """The dbt project: $ST_DBT_PROJECT_DIR, else `dbt/` beside the package, else ./dbt."""
    override = os.environ.get("ST_DBT_PROJECT_DIR")
    candidates = [Path(override)] if override else []
    # the repository layout (editable installs), then the image's WORKDIR layout
    candidates += [Path(__file__).resolve().parents[2] / "dbt", Path.cwd() / "dbt"]
    for path in candidates:
        if (path / "dbt_project.yml").is_file():
            return path
    raise StageError(
        f"dbt project not found (looked in {', '.join(str(c) for c in candidates)}); "
        "set ST_DBT_PROJECT_DIR to the project's dbt/ folder"
    )


@dataclass(frozen=True)
class DbtTarget:
    """Where one dbt job builds: a DuckDB file and the connection config it was opened with."""

    database: Path
    work_dir: Path
    config: dict[str, Any]

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A connection to the built database with the exact config dbt used (STACK.md trap)."""
        import duckdb

        return duckdb.connect(str(self.database), config=dict(self.config))

    def read(self, sql: str) -> pa.Table:
        """Run a query on the built database and return Arrow."""
        con = self.connect()
        try:
            return con.execute(sql).to_arrow_table()
        finally:
            con.close()


def make_target(
    state_dir: str | Path, name: str, memory_limit_mb: int | None, threads: int | None
) -> DbtTarget:
    """A scratch DuckDB file under `<state_dir>/dbt/<name>` for one stage's builds."""
    work = Path(state_dir).resolve() / "dbt" / name
    work.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        # INSTALL '<path>' copies the extension here instead of into ~/.duckdb
        "extension_directory": str(work / "extensions"),
    }
    if memory_limit_mb:
        config["memory_limit"] = f"{memory_limit_mb}MB"
    if threads:
        config["threads"] = str(threads)
    return DbtTarget(work / f"{name}.duckdb", work, config)


def profile_for(target: DbtTarget, lake: Lake) -> dict[str, Any]:
    """The dbt profile: DuckDB file, offline extensions by path, S3 secret for remote lakes."""
    extensions = [str(extension_path("delta"))]
    output: dict[str, Any] = {
        "type": "duckdb",
        "path": str(target.database),
        "threads": 1,
        "extensions": extensions,
        "config_options": dict(target.config),
    }
    if lake.is_remote:
        extensions.insert(0, str(extension_path("httpfs")))
        output["secrets"] = [_s3_secret(lake.storage_options)]
    return {PROFILE: {"target": "st", "outputs": {"st": output}}}


def _s3_secret(options: dict[str, str]) -> dict[str, Any]:
    """dbt-duckdb secret from deltalake storage options; keys are read from the environment."""
    secret: dict[str, Any] = {
        "type": "s3",
        "provider": "config",
        # rendered by dbt from the environment, so credentials never land in a file
        "key_id": "{{ env_var('AWS_ACCESS_KEY_ID', '') }}",
        "secret": "{{ env_var('AWS_SECRET_ACCESS_KEY', '') }}",
        "region": options.get("AWS_REGION", "us-east-1"),
    }
    endpoint = options.get("AWS_ENDPOINT_URL", "")
    parsed = urlparse(endpoint) if endpoint else None
    if parsed and parsed.netloc:
        # DuckDB wants host:port without the scheme
        secret.update(endpoint=parsed.netloc, url_style="path", use_ssl=parsed.scheme == "https")
    return secret


def lake_root_var(lake: Lake) -> str:
    """The `lake_root` var: the URI prefix of every table (local roots resolved)."""
    if lake.is_remote:
        return lake.root
    return str(Path(lake.root).resolve())


def dbt_build(
    target: DbtTarget,
    lake: Lake,
    select: Sequence[str],
    variables: dict[str, Any],
    *,
    echo: bool = False,
) -> None:
    """`dbt build --select ...` in-process; StageError with dbt's message on any failure.

    dbt's own output goes to the `st.dbt.output` logger (debug) and to dbt.log in the
    work dir; with `echo` it is also printed as dbt prints it.
    """
    _invoke("build", target, lake, select, variables, echo=echo)


def dbt_compile(target: DbtTarget, lake: Lake, model: str, variables: dict[str, Any]) -> str:
    """One model's SQL as dbt compiles it (its ephemeral models inlined), run by nothing."""
    result = _invoke("compile", target, lake, [f"{model},resource_type:model"], variables)
    for node_result in getattr(result.result, "results", None) or []:
        node = node_result.node
        if node.name == model and node.compiled_code:
            return str(node.compiled_code)
    raise StageError(f"dbt compile gave no SQL for model {model}")


def _invoke(
    command: str,
    target: DbtTarget,
    lake: Lake,
    select: Sequence[str],
    variables: dict[str, Any],
    *,
    echo: bool = False,
) -> Any:
    from dbt.cli.main import dbtRunner

    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    project = project_dir()
    with tempfile.TemporaryDirectory(prefix="st-dbt-profile-") as profiles:
        Path(profiles, "profiles.yml").write_text(
            yaml.safe_dump(profile_for(target, lake), sort_keys=False)
        )
        args = [
            command,
            "--project-dir",
            str(project),
            "--profiles-dir",
            profiles,
            "--target-path",
            str(target.work_dir / "target"),
            "--log-path",
            str(target.work_dir / "logs"),
            "--vars",
            json.dumps(variables),
            "--log-level",
            "info" if echo else "none",
            "--log-level-file",
            "info",
            "--no-use-colors",
            "--select",
            *select,
        ]
        log.debug("dbt %s", " ".join(args))
        try:
            result = dbtRunner(callbacks=[_forward]).invoke(args)
        except Exception as exc:  # dbt raises for broken projects before any node runs
            raise StageError(f"dbt {command} failed: {_one_line(exc)}") from exc
    if result.success:
        return result
    raise StageError(_failure_message(result, command))


def _forward(event: Any) -> None:
    """dbt event → the st.dbt.output logger (shown with -vv; always in dbt.log)."""
    try:
        message = event.info.msg
    except AttributeError:
        return
    if message:
        dbt_log.debug("%s", message)


def _failure_message(result: Any, command: str = "build") -> str:
    """One line naming the failed dbt nodes and dbt's message for the first one."""
    if result.exception is not None:
        return f"dbt {command} failed: {_one_line(result.exception)}"
    failed = []
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status)).lower()
        if status in _BAD_STATUSES and status != "skipped":
            node = node_result.node
            failed.append((node.resource_type, node.name, node_result.message or status))
    if not failed:
        return f"dbt {command} failed (see dbt.log in the state dir)"
    kind, name, message = failed[0]
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"dbt {kind} {name} failed: {_one_line(message)}{more}"


def _one_line(value: Any) -> str:
    text = str(value).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(value).__name__
