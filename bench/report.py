"""Shared output of the benchmarks: a plain table on stdout and JSON with machine facts."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_results(path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Print `rows` as a table of `columns` and write them, with the machine, to `path`."""
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m": os.getloadavg()[0],
    }
    path.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {path}")
