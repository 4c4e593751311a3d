"""The project cache: jars, broker and server binaries fetched by scripts/install-deps.sh."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$ST_CACHE_DIR, else ~/.cache/smarttrader."""
    env = os.environ.get("ST_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "smarttrader"


def spark_jar_dir(configured: str = "") -> Path:
    """Delta (and hadoop-aws) jars for Spark: spark.jar_cache, else <cache>/jars/spark."""
    return Path(configured).expanduser() if configured else cache_dir() / "jars" / "spark"


def kafka_dir() -> Path:
    """Apache Kafka broker classpath (jars) for tests and local use."""
    return cache_dir() / "kafka"


def bin_dir() -> Path:
    """Binaries built by the install script (minio, supercronic)."""
    return cache_dir() / "bin"
