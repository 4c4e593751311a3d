"""Generated files are fresh, every command documents an example, every config key its help."""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from pathlib import Path

import pytest

from smarttrader_cli import docs_gen
from smarttrader_cli.config import defaults_text
from smarttrader_cli.config.schema import Config, keys

HINT = "stale: run `python -m smarttrader_cli.docs_gen` and commit it"
FILES = docs_gen.GENERATED_FILES


@pytest.mark.parametrize(("path", "generate"), FILES, ids=[str(p.name) for p, _ in FILES])
def test_generated_file_is_fresh(path: Path, generate: Callable[[], str]) -> None:
    assert path.read_text() == generate(), f"{path} {HINT}"


def test_the_shipped_config_files_are_generated() -> None:
    generated = {path for path, _ in FILES}
    assert docs_gen.PACKAGE_DIR / "config" / "defaults.yaml" in generated
    assert docs_gen.ROOT_DIR / "configs" / "smarttrader.yaml" in generated


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
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \|", docs_gen.config_markdown(), re.MULTILINE)
    assert sorted(rows) == sorted(_schema_leaves(Config))


def test_every_config_key_has_a_help_and_the_yaml_shows_it() -> None:
    assert [k.dotted for k in keys() if not k.help] == [], "give these keys a help"
    lines = defaults_text().splitlines()
    for k in keys():
        name = k.dotted.rsplit(".", 1)[-1]
        assert any(f"{name}:" in line and line.endswith(f"# {k.help}") for line in lines), k
