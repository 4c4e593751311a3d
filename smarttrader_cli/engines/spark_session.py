"""A SparkSession with Delta from cached jars: nothing resolves or downloads at start."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from smarttrader_cli.errors import ConfigError, StError, first_line
from smarttrader_cli.ops.cache import cache_dir, spark_jar_dir
from smarttrader_cli.ops.resources import spark_memory_mb

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from smarttrader_cli.config.schema import Config

REQUIRED_JARS = ("delta-spark_", "delta-storage-")


def delta_jars(configured: str = "", need_s3: bool = False) -> list[Path]:
    """The jars to pass as spark.jars; StError naming the folder when one is missing."""
    folder = spark_jar_dir(configured)
    jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    wanted = REQUIRED_JARS + (("hadoop-aws-",) if need_s3 else ())
    missing = [w for w in wanted if not any(j.name.startswith(w) for j in jars)]
    if missing:
        raise StError(
            f"Spark jars missing in {folder}: {', '.join(m.rstrip('-_') for m in missing)} "
            "(run scripts/install-deps.sh)"
        )
    return jars


def s3a_conf(storage_options: dict[str, str]) -> dict[str, str]:
    """Hadoop s3a settings from deltalake-style storage options (endpoint, path style, keys)."""
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }
    endpoint = storage_options.get("AWS_ENDPOINT_URL", "")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        ssl = urlparse(endpoint).scheme == "https"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(ssl).lower()
    if storage_options.get("AWS_ACCESS_KEY_ID"):
        conf["spark.hadoop.fs.s3a.access.key"] = storage_options["AWS_ACCESS_KEY_ID"]
        conf["spark.hadoop.fs.s3a.secret.key"] = storage_options.get("AWS_SECRET_ACCESS_KEY", "")
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
    if storage_options.get("AWS_REGION"):
        conf["spark.hadoop.fs.s3a.endpoint.region"] = storage_options["AWS_REGION"]
    return conf


def spark_uri(uri: str) -> str:
    """Hadoop wants s3a:// where deltalake and DuckDB say s3://."""
    return "s3a://" + uri[len("s3://") :] if uri.startswith("s3://") else uri


def session_conf(config: Config, storage_options: dict[str, str]) -> dict[str, str]:
    """Every setting of the session, sized from free memory by the memory guard."""
    remote = config.lake.root.startswith("s3://")
    jars = delta_jars(config.spark.jar_cache, need_s3=remote)
    driver_mb, executor_mb = spark_memory_mb(config.memory)
    if config.spark.executor_memory_mb > 0:  # a cluster's workers offer what they offer
        executor_mb = config.spark.executor_memory_mb
    ivy = cache_dir() / "ivy"
    conf = {
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.jars.ivy": str(ivy),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.driver.memory": f"{driver_mb}m",
        "spark.executor.memory": f"{executor_mb}m",
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if remote:
        conf.update(s3a_conf(storage_options))
    return conf


def build_session(config: Config, storage_options: dict[str, str]) -> SparkSession:
    """Start (or reuse) the session for `spark.master` with the cached Delta jars."""
    if not config.spark.master:
        raise ConfigError("spark.master is empty: set local[*] or spark://host:7077")
    conf = session_conf(config, storage_options)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    Path(conf["spark.jars.ivy"]).mkdir(parents=True, exist_ok=True)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(config.spark.master).appName(config.spark.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise StError(f"cannot start Spark at {config.spark.master}: {first_line(exc)}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session
