"""Parse the config file's YAML to plain data plus the line number of every dotted key."""

from __future__ import annotations

from typing import Any

import yaml

from smarttrader_cli.errors import ConfigError


def parse_yaml(text: str, filename: str) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse YAML to data plus a map of dotted key -> line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_error(exc, filename)) from exc
    if node is None:
        return {}, {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{filename}:{node.start_mark.line + 1}: config must be a mapping")
    lines: dict[str, int] = {}
    data = _construct(node, "", lines, filename)
    return data, lines


def _yaml_error(exc: yaml.YAMLError, filename: str) -> str:
    """One line naming where the parser stopped and where the construct it was in opened."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{filename}:{mark.line + 1}" if mark else filename
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    opened, context = getattr(exc, "context_mark", None), getattr(exc, "context", None) or ""
    if opened is None or not context.startswith(("while parsing a", "while scanning a")):
        return f"{where}: invalid YAML: {problem}"
    construct = context.split(" ", 3)[3]  # "while parsing a block mapping" -> "block mapping"
    return f"{where}: invalid YAML: {problem} (the {construct} opened at line {opened.line + 1})"


def _construct(node: yaml.Node, prefix: str, lines: dict[str, int], filename: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            dotted = f"{prefix}.{key}" if prefix else key
            if key in out:
                raise ConfigError(
                    f"{filename}:{key_node.start_mark.line + 1}: duplicate key {dotted}"
                )
            lines[dotted] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, dotted, lines, filename)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, prefix, lines, filename) for child in node.value]
    return yaml.SafeLoader(" ").construct_object(node)  # type: ignore[no-untyped-call]
