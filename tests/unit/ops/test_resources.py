"""Memory guard: size engines from free memory, refuse below the floor with free vs needed."""

from __future__ import annotations

import os

import pytest

from smarttrader_cli.config.schema import MemoryConfig
from smarttrader_cli.errors import ResourceError
from smarttrader_cli.ops.resources import budget_for, free_memory_mb, spark_memory_mb


def test_below_floor_names_free_and_needed() -> None:
    memory = MemoryConfig(min_free_mb=2048)
    with pytest.raises(ResourceError) as info:
        budget_for(memory, free_mb=1500, what="silver.pnl")
    message = str(info.value)
    assert "silver.pnl" in message
    assert "1500 MB" in message and "2048 MB" in message
    assert "memory.min_free_mb" in message
    assert info.value.exit_code == 1


def test_at_floor_is_allowed() -> None:
    budget = budget_for(MemoryConfig(min_free_mb=1024), free_mb=1024)
    assert budget.free_mb == 1024


def test_limit_is_fraction_of_free_capped_at_max() -> None:
    memory = MemoryConfig(min_free_mb=100, duckdb_memory_fraction=0.5, duckdb_max_memory_mb=3000)
    assert budget_for(memory, free_mb=4000).memory_limit_mb == 2000
    assert budget_for(memory, free_mb=10_000).memory_limit_mb == 3000


def test_limit_never_below_256_mb() -> None:
    memory = MemoryConfig(min_free_mb=100, duckdb_memory_fraction=0.1)
    assert budget_for(memory, free_mb=300).memory_limit_mb == 256


def test_threads_from_config_or_cores() -> None:
    assert budget_for(MemoryConfig(min_free_mb=0, duckdb_threads=3), free_mb=4096).threads == 3
    auto = budget_for(MemoryConfig(min_free_mb=0, duckdb_threads=0), free_mb=4096)
    assert auto.threads == (os.cpu_count() or 1)


def test_spark_split_between_driver_and_executor() -> None:
    memory = MemoryConfig(min_free_mb=1024, spark_memory_fraction=0.5)
    driver, executor = spark_memory_mb(memory, free_mb=8000)
    assert (driver, executor) == (2000, 2000)
    assert spark_memory_mb(memory, free_mb=1100) == (512, 512)  # floors of 512 MB each


def test_spark_refuses_below_floor() -> None:
    with pytest.raises(
        ResourceError, match="spark: only 900 MB of memory free, needs at least 1024"
    ):
        spark_memory_mb(MemoryConfig(min_free_mb=1024), free_mb=900)


def test_free_memory_is_measured() -> None:
    import psutil

    measured = free_memory_mb()
    assert 0 < measured <= psutil.virtual_memory().total / 2**20
