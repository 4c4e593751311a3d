"""The library below the CLI draws nothing and reads no CLI state (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "smarttrader_cli"
LIBRARY = (
    "stages",
    "engines",
    "lake",
    "stream",
    "sources",
    "ops",
    "sim",
    "report",
    "config",
    "alerts",
    "follow",
)
FORBIDDEN = re.compile(r"^\s*(import rich|from rich\b|from smarttrader_cli\.(cli|context)\b)", re.M)


@pytest.mark.parametrize("package", LIBRARY)
def test_library_packages_import_neither_rich_nor_the_cli(package: str) -> None:
    found = [
        f"{path.relative_to(PACKAGE)}: {match.group(0).strip()}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for match in FORBIDDEN.finditer(path.read_text())
    ]
    assert found == []
