"""Generated docs are fresh, every command documents an example, every config key a comment."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from smarttrader_cli import docs_gen
from smarttrader_cli.config import defaults_text
from smarttrader_cli.config.schema import Config

HINT = "stale: run `python -m smarttrader_cli.docs_gen` and commit docs/"


def test_config_md_is_fresh() -> None:
    path = docs_gen.DOCS_DIR / "config.md"
    assert path.read_text() == docs_gen.config_markdown(), f"{path} {HINT}"


def test_cli_md_is_fresh() -> None:
    path = docs_gen.DOCS_DIR / "cli.md"
    assert path.read_text() == docs_gen.cli_markdown(), f"{path} {HINT}"


LEAVES = [path for path, leaf in docs_gen.command_paths() if leaf]


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_command_has_an_example(path: list[str]) -> None:
    text = docs_gen.command_help(path)
    assert any(line.strip().startswith("Example:") for line in text.splitlines()), (
        f"`st {' '.join(path)} --help` has no line starting with 'Example:'"
    )


def _schema_leaves(cls: typing.Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        dotted = f"{prefix}.{field.name}" if prefix else field.name
        tp = hints[field.name]
        out |= _schema_leaves(tp, dotted) if dataclasses.is_dataclass(tp) else {dotted}
    return out


def test_config_reference_covers_every_schema_key() -> None:
    documented = {e["key"] for e in docs_gen.config_entries(defaults_text())}
    assert documented == _schema_leaves(Config)


def test_config_entries_read_comments_and_defaults() -> None:
    text = (
        "a:\n  b: 3            # three\n  c: [x, y]  # list\n  d: {}\n  e:\n    - 1  # not mine\n"
    )
    entries = {e["key"]: e for e in docs_gen.config_entries(text)}
    assert entries["a.b"]["comment"] == "three" and entries["a.b"]["default"] == 3
    assert entries["a.c"]["default"] == ["x", "y"] and entries["a.c"]["env"] == "ST_A__C"
    assert entries["a.d"]["comment"] == ""
    assert entries["a.e"]["comment"] == "" and entries["a.e"]["default"] == [1]


def test_every_config_key_has_a_comment() -> None:
    missing = [
        f"defaults.yaml:{e['line']} {e['key']}"
        for e in docs_gen.config_entries(defaults_text())
        if not e["comment"]
    ]
    assert missing == [], "add a one-line # comment to: " + ", ".join(missing)
