"""Memory and disk guard: size heavy engines from what is free, refuse below a floor."""

from __future__ import annotations

import os
from dataclasses import dataclass

from smarttrader_cli.config.schema import MemoryConfig
from smarttrader_cli.errors import ResourceError


@dataclass(frozen=True)
class EngineBudget:
    """Memory and threads a heavy stage may use."""

    free_mb: int
    memory_limit_mb: int
    threads: int


def free_memory_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().available / 2**20)


def budget_for(
    memory: MemoryConfig, *, free_mb: int | None = None, what: str = "stage"
) -> EngineBudget:
    """The budget for a heavy stage; ResourceError names free vs needed when too little is free."""
    free = free_memory_mb() if free_mb is None else free_mb
    if free < memory.min_free_mb:
        raise ResourceError(
            f"{what}: only {free} MB of memory free, needs at least {memory.min_free_mb} MB "
            "(memory.min_free_mb)"
        )
    limit = min(int(free * memory.duckdb_memory_fraction), memory.duckdb_max_memory_mb)
    threads = memory.duckdb_threads or (os.cpu_count() or 1)
    return EngineBudget(free, max(limit, 256), threads)


def spark_memory_mb(memory: MemoryConfig, *, free_mb: int | None = None) -> tuple[int, int]:
    """(driver, executor) memory in MB, split from the configured share of free memory."""
    budget = budget_for(memory, free_mb=free_mb, what="spark")
    share = int(budget.free_mb * memory.spark_memory_fraction)
    driver = max(512, share // 2)
    return driver, max(512, share - driver)
