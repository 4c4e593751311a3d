"""`st doctor`: small independent checks of what a run needs, each returning a result."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from smarttrader_cli.errors import StError, first_line
from smarttrader_cli.host import dir_problem, dir_state, is_loopback

if TYPE_CHECKING:
    from smarttrader_cli.config import LoadedConfig

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
# Jars Spark needs from the cache (prefix of the file name), and the one S3 adds.
SPARK_JARS = ("delta-spark_", "delta-storage-")
S3_JARS = ("hadoop-aws-",)


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    check: str
    status: str
    detail: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


Check = Callable[["LoadedConfig"], CheckResult]


def run_checks(
    config_path: str | Path | None = None, env: dict[str, str] | None = None
) -> list[CheckResult]:
    """Load the config, then run every check; a bad config skips the rest.

    No detail carries a secret: each is redacted of every credential the config knows
    (environment secrets, secret storage options), whatever the check or error said.
    """
    from smarttrader_cli.config import Secrets, load_config
    from smarttrader_cli.config.redaction import redact_text

    try:
        loaded = load_config(config_path, env)
    except StError as exc:
        secrets = asdict(Secrets.from_env(env)).values()
        return [CheckResult("config", FAIL, redact_text(str(exc), secrets))] + [
            CheckResult(name, SKIP, "config is not valid") for name, _ in CHECKS
        ]
    where = str(loaded.path) if loaded.path else "embedded defaults"
    results = [CheckResult("config", OK, f"{where} (hash {loaded.hash})")]
    for name, check in CHECKS:
        try:
            results.append(check(loaded))
        except Exception as exc:  # a check must never take the report down
            results.append(CheckResult(name, FAIL, f"{type(exc).__name__}: {first_line(exc)}"))
    return [replace(r, detail=loaded.redact(r.detail)) for r in results]


def failed(results: list[CheckResult]) -> bool:
    """True when any check failed."""
    return any(r.status == FAIL for r in results)


# --- lake -------------------------------------------------------------------


def check_lake(loaded: LoadedConfig) -> CheckResult:
    """The lake root can be written: a probe file is created and removed."""
    root = loaded.config.lake.root
    if root.startswith("s3://"):
        return _check_s3_lake(loaded)
    if "://" in root:
        return CheckResult("lake", FAIL, f"unsupported lake scheme in {root}")
    path = Path(root)
    detail = dir_problem(path)
    if detail:
        return CheckResult("lake", FAIL, f"{path}: {detail}")
    return CheckResult("lake", OK, f"{path.resolve()} {dir_state(path)}")


def _check_s3_lake(loaded: LoadedConfig) -> CheckResult:
    from pyarrow import fs

    from smarttrader_cli.lake.store import lake_storage_options

    root = loaded.config.lake.root
    options = lake_storage_options(loaded)
    if not options.get("AWS_ACCESS_KEY_ID") or not options.get("AWS_SECRET_ACCESS_KEY"):
        return CheckResult(
            "lake", FAIL, f"{root}: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set"
        )
    s3 = s3_filesystem(options)
    bucket_and_prefix = root[len("s3://") :].rstrip("/")
    bucket = bucket_and_prefix.split("/", 1)[0]
    probe = f"{bucket_and_prefix}/.st-doctor-probe-{uuid.uuid4().hex[:8]}"
    try:
        info = s3.get_file_info(bucket)
        if info.type == fs.FileType.NotFound:
            return CheckResult("lake", FAIL, f"{root}: bucket {bucket!r} does not exist")
        with s3.open_output_stream(probe) as out:
            out.write(b"ok")
        s3.delete_file(probe)
    except OSError as exc:
        return CheckResult("lake", FAIL, f"{root}: {first_line(exc)}")
    endpoint = options.get("AWS_ENDPOINT_URL", "AWS")
    return CheckResult("lake", OK, f"{root} writable via {endpoint}")


def s3_filesystem(options: dict[str, str]) -> Any:
    """A pyarrow S3 filesystem from deltalake-style storage options (fails fast)."""
    from pyarrow import fs

    endpoint = urlparse(options.get("AWS_ENDPOINT_URL", ""))
    kwargs: dict[str, Any] = {
        "access_key": options.get("AWS_ACCESS_KEY_ID"),
        "secret_key": options.get("AWS_SECRET_ACCESS_KEY"),
        "region": options.get("AWS_REGION", "us-east-1"),
        "connect_timeout": 3,
        "request_timeout": 5,
        "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=1),
    }
    if endpoint.netloc:
        kwargs.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "https")
    return fs.S3FileSystem(**kwargs)


# --- stream -----------------------------------------------------------------


def check_broker(loaded: LoadedConfig) -> CheckResult:
    """The stream backend is usable (kafka: the cluster answers; local: the log directory
    is writable)."""
    from smarttrader_cli.errors import BrokerUnavailableError
    from smarttrader_cli.stream.backend import open_backend

    try:
        return CheckResult("broker", OK, open_backend(loaded.config.stream).health())
    except BrokerUnavailableError as exc:
        return CheckResult("broker", FAIL, first_line(exc))


def check_spool(loaded: LoadedConfig) -> CheckResult:
    """The webhook spool directory (used while the broker is down) is writable."""
    path = Path(loaded.config.webhook.spool_dir)
    detail = dir_problem(path)
    if detail:
        return CheckResult("spool", FAIL, f"{path}: {detail}")
    return CheckResult("spool", OK, f"{path.resolve()} {dir_state(path)}")


# --- credentials ------------------------------------------------------------


def check_birdeye_key(loaded: LoadedConfig) -> CheckResult:
    """BIRDEYE_API_KEY is set, unless BirdEye is a loopback simulator."""
    return _api_key(
        "birdeye key",
        "BIRDEYE_API_KEY",
        loaded.secrets.birdeye_api_key,
        loaded.config.birdeye.base_url,
    )


def check_helius_key(loaded: LoadedConfig) -> CheckResult:
    """HELIUS_API_KEY is set, unless Helius is a loopback simulator."""
    return _api_key(
        "helius key",
        "HELIUS_API_KEY",
        loaded.secrets.helius_api_key,
        loaded.config.helius.api_base_url,
    )


def check_webhook_token(loaded: LoadedConfig) -> CheckResult:
    """ST_WEBHOOK_AUTH_TOKEN is set when the webhook server listens beyond loopback."""
    if loaded.secrets.webhook_auth_token:
        return CheckResult("webhook token", OK, "ST_WEBHOOK_AUTH_TOKEN set")
    host = loaded.config.webhook.host
    if is_loopback(host):
        return CheckResult(
            "webhook token", WARN, f"ST_WEBHOOK_AUTH_TOKEN unset ({host} is loopback)"
        )
    return CheckResult(
        "webhook token", FAIL, f"ST_WEBHOOK_AUTH_TOKEN unset while webhook.host is {host}"
    )


def _api_key(name: str, var: str, value: str | None, base_url: str) -> CheckResult:
    host = urlparse(base_url).hostname or ""
    if value:
        return CheckResult(name, OK, f"{var} set")
    if is_loopback(host):
        return CheckResult(name, WARN, f"{var} unset (fine for the loopback simulator {base_url})")
    return CheckResult(name, FAIL, f"{var} unset; {base_url} needs it")


# --- engines ----------------------------------------------------------------


def check_duckdb(loaded: LoadedConfig) -> CheckResult:
    """The offline DuckDB extensions (delta, httpfs) are installed for duckdb 1.5.5."""
    from smarttrader_cli.lake.query import extension_path

    found = []
    for name in ("delta", "httpfs"):
        try:
            extension_path(name)
        except StError as exc:
            return CheckResult("duckdb", FAIL, str(exc))
        found.append(name)
    import duckdb

    return CheckResult("duckdb", OK, f"duckdb {duckdb.__version__}, extensions {', '.join(found)}")


def check_java(loaded: LoadedConfig) -> CheckResult:
    """A Java runtime answers `java -version` (only needed when engine is spark)."""
    if loaded.config.engine != "spark":
        return CheckResult("java", SKIP, "engine is duckdb")
    java = shutil.which("java")
    if java is None:
        return CheckResult("java", FAIL, "java not on PATH; engine spark needs Java 17")
    try:
        proc = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CheckResult("java", FAIL, f"{java} -version: {first_line(exc)}")
    first = (proc.stderr or proc.stdout).strip().splitlines()
    if proc.returncode != 0 or not first:
        return CheckResult("java", FAIL, f"{java} -version exited {proc.returncode}")
    return CheckResult("java", OK, first[0])


def check_spark_jars(loaded: LoadedConfig) -> CheckResult:
    """The Delta (and for S3, hadoop-aws) jars are in the cache, and pyspark imports."""
    import importlib.util

    from smarttrader_cli.ops.cache import spark_jar_dir

    config = loaded.config
    if config.engine != "spark":
        return CheckResult("spark jars", SKIP, "engine is duckdb")
    if importlib.util.find_spec("pyspark") is None:
        return CheckResult("spark jars", FAIL, "pyspark not installed (pip install .[spark])")
    folder = spark_jar_dir(config.spark.jar_cache)
    wanted = SPARK_JARS + (S3_JARS if config.lake.root.startswith("s3://") else ())
    names = [p.name for p in folder.glob("*.jar")] if folder.is_dir() else []
    missing = [w for w in wanted if not any(n.startswith(w) for n in names)]
    if missing:
        return CheckResult(
            "spark jars",
            FAIL,
            f"{folder}: missing {', '.join(m.rstrip('_-') for m in missing)} "
            "(run scripts/install-deps.sh)",
        )
    return CheckResult("spark jars", OK, f"{len(names)} jars in {folder}")


# --- resources --------------------------------------------------------------


def check_disk(loaded: LoadedConfig) -> CheckResult:
    """Used disk under every local data directory against ops.disk_* thresholds."""
    from smarttrader_cli.ops.cleanup import disk_levels

    levels = disk_levels(loaded.config)
    worst = max(levels, key=lambda r: r.percent)
    detail = f"{worst.percent:.1f}% used on {worst.mount} ({worst.free_mb} MB free)"
    if worst.level == "critical":
        return CheckResult("disk", FAIL, f"{detail} ≥ critical {worst.critical:g}%")
    if worst.level == "warning":
        return CheckResult("disk", WARN, f"{detail} ≥ warning {worst.warning:g}%")
    return CheckResult("disk", OK, detail)


def check_memory(loaded: LoadedConfig) -> CheckResult:
    """Free memory against memory.min_free_mb, and the DuckDB budget it allows."""
    from smarttrader_cli.ops.resources import budget_for

    memory = loaded.config.memory
    try:
        budget = budget_for(memory, what="heavy stages")
    except StError as exc:
        return CheckResult("memory", FAIL, str(exc))
    return CheckResult(
        "memory",
        OK,
        f"{budget.free_mb} MB free ≥ {memory.min_free_mb} MB; DuckDB limit "
        f"{budget.memory_limit_mb} MB, {budget.threads} threads",
    )


CHECKS: list[tuple[str, Check]] = [
    ("lake", check_lake),
    ("broker", check_broker),
    ("spool", check_spool),
    ("birdeye key", check_birdeye_key),
    ("helius key", check_helius_key),
    ("webhook token", check_webhook_token),
    ("duckdb", check_duckdb),
    ("java", check_java),
    ("spark jars", check_spark_jars),
    ("disk", check_disk),
    ("memory", check_memory),
]
