"""`--help` pages drawn without rich: typer's layout (usage, text, Arguments/Options/Commands
panels) in plain text, coloured with ANSI codes that click strips when stdout is not a terminal.

typer draws help with rich, whose import (markdown, syntax, traceback modules) and layout cost
more than the rest of `st` start-up together: 0.25 s of the 0.4-0.5 s `st --help` took (issue 16).
Commands that run keep rich for their tables and progress; only help pages use this module.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

MIN_WIDTH = 40
NAME_COLUMN_MAX = 32  # an option spelled longer than this puts its help on the next line

# ANSI SGR codes, as typer's rich styles: option names cyan, short switches green, types yellow
STYLES = {
    "usage": "33",
    "command": "1",
    "option": "1;36",
    "switch": "1;32",
    "type": "1;33",
    "dim": "2",
    "extra": "2;33",
}
_NAME_PARTS = re.compile(r"(?P<option>--[\w-]+)|(?P<switch>(?<![\w-])-\w\b)|(?P<type><[^>]*>)")

Segment = tuple[str, str]  # (text, style name or "")


class HelpCommand(TyperCommand):
    """A typer command whose --help page is drawn by this module."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        formatter.write(render(self, ctx))


class HelpGroup(TyperGroup):
    """A typer group whose --help page is drawn by this module."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:  # type: ignore[override]
        formatter.write(render(self, ctx))

    def summaries(self, ctx: typer.Context) -> list[tuple[str, str]]:
        """(name, first paragraph of its help) of each visible sub-command: the Commands panel."""
        rows = [(name, self.summary(ctx, name)) for name in self.list_commands(ctx)]
        return [(name, text) for name, text in rows if text is not None]

    def summary(self, ctx: typer.Context, name: str) -> str | None:
        """A sub-command's line in the Commands panel; None for a hidden or unknown one."""
        sub = self.get_command(ctx, name)
        if sub is None or sub.hidden:
            return None
        return first_paragraph(sub.short_help or sub.help or "")


def first_paragraph(text: str) -> str:
    """The first paragraph of a help text, on one line."""
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def use_help_pages(app: typer.Typer) -> None:
    """Every command and sub-group registered on `app` (at any depth) draws its help here,
    unless it asked for a class of its own."""
    for command in app.registered_commands:
        if command.cls in (None, TyperCommand):
            command.cls = HelpCommand
    for group in app.registered_groups:
        if not group.cls or group.cls is TyperGroup:
            group.cls = HelpGroup
        if group.typer_instance is not None:
            use_help_pages(group.typer_instance)


def requested_page(ctx: typer.Context, args: list[str]) -> tuple[typer.Context, int] | None:
    """The context of the command whose help page `args` ask for, and the exit code after it:
    0 for its -h/--help, 2 (a usage error, as click has it) for a command that shows its help
    when given no arguments and got none. None when `args` run something.

    Read with click's own parsers, so an option's value that happens to be "-h" stays a value.
    No option value is converted on the way (typer converts through pydantic, whose import
    costs more than drawing the page)."""
    if ctx.resilient_parsing:  # shell completion, or a tool walking the commands
        return None
    page: Any = ctx
    command: Any = ctx.command
    while True:
        if not args and command.no_args_is_help:
            return page, 2
        try:
            opts, rest, _order = command.make_parser(page).parse_args(args=list(args))
        except Exception:  # a usage error: the normal path reports it
            return None
        help_option = command.get_help_option(page)
        if any(
            p.is_eager and p.name in opts and p is not help_option for p in command.get_params(page)
        ):
            return None  # --version and the like: the normal path orders them with -h
        if help_option is not None and help_option.name in opts:
            return page, 0
        if not isinstance(command, TyperGroup) or not rest:
            return None
        sub = command.get_command(page, rest[0])
        if sub is None:
            return None
        page = sub.context_class(sub, info_name=rest[0], parent=page, **sub.context_settings)
        command, args = sub, rest[1:]


def render(command: Any, ctx: typer.Context) -> str:
    """The help page of `command`: usage, its text, then its panels."""
    width = max(MIN_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    color = "NO_COLOR" not in os.environ
    lines: list[list[Segment]] = [[], _usage(command.get_usage(ctx)), []]
    text = _help_text(command, width - 2)
    if text:
        lines += [*text, []]
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            (arguments if param.param_type_name == "argument" else options).append(record)
    commands = command.summaries(ctx) if isinstance(command, HelpGroup) else []
    for title, rows, names_style in (
        ("Arguments", arguments, None),
        ("Options", options, None),
        ("Commands", commands, "option"),
    ):
        if rows:
            lines += _panel(title, _table(rows, width - 4, names_style), width)
    return "\n".join(_paint(line, color) for line in lines) + "\n"


def _usage(usage: str) -> list[Segment]:
    label, _, rest = usage.partition(" ")
    return [(" ", ""), (label, "usage"), (" ", ""), (" ".join(rest.split()), "command")]


def _help_text(command: Any, width: int) -> list[list[Segment]]:
    """The first paragraph as one wrapped line group, the others dim with their line breaks."""
    text = inspect.cleandoc(command.help or "").partition("\f")[0]
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if not paragraphs:
        return []
    first = " ".join(paragraphs[0].split())
    if getattr(command, "deprecated", False):
        first = f"(deprecated) {first}"
    lines = [[(" ", ""), (line, "")] for line in _wrap(first, width)]
    for paragraph in paragraphs[1:]:
        lines.append([])
        for source_line in paragraph.splitlines():
            lines += [[(" ", ""), (line, "dim")] for line in _wrap(source_line, width)]
    return lines


def _table(
    rows: list[tuple[str, str]], width: int, names_style: str | None
) -> Iterator[list[Segment]]:
    """Two columns: names (options coloured by part) and help, its [env var/default] dim."""
    names_width = min(NAME_COLUMN_MAX, max(len(name) for name, _ in rows))
    help_width = max(10, width - names_width - 2)
    for name, help_text in rows:
        body, extra = _split_extra(help_text)
        help_lines = [[(line, "")] for line in _wrap(body, help_width)]
        for line in _wrap(extra, help_width):
            last = help_lines[-1] if help_lines else None
            if (
                last is not None
                and len(last) == 1
                and len(last[0][0]) + 1 + len(line) <= help_width
            ):
                last += [(" ", ""), (line, "extra")]
            else:
                help_lines.append([(line, "extra")])
        name_segments = [(name, names_style)] if names_style else _name_parts(name)
        if len(name) > names_width:  # the help starts on the next line
            yield name_segments
            name_segments, name = [], ""
        if not help_lines:
            help_lines = [[]]
        for i, help_line in enumerate(help_lines):
            head = name_segments if i == 0 else []
            pad = names_width - (len(name) if i == 0 else 0) + 2
            yield [*head, (" " * pad, ""), *help_line]


def _split_extra(help_text: str) -> tuple[str, str]:
    """typer ends an option's help with "  [env var: X; default: Y; required]"."""
    if help_text.startswith("[") and help_text.endswith("]") and "  [" not in help_text:
        return "", help_text
    body, sep, extra = help_text.rpartition("  [")
    if sep and help_text.endswith("]"):
        return body, f"[{extra}"
    return help_text, ""


def _name_parts(name: str) -> list[Segment]:
    segments: list[Segment] = []
    end = 0
    for match in _NAME_PARTS.finditer(name):
        if match.start() > end:
            segments.append((name[end : match.start()], ""))
        segments.append((match.group(), match.lastgroup or ""))
        end = match.end()
    if end < len(name):
        segments.append((name[end:], ""))
    return segments


def _panel(title: str, rows: Iterator[list[Segment]], width: int) -> list[list[Segment]]:
    inner = width - 4
    out: list[list[Segment]] = [
        [("╭─ ", "dim"), (title, ""), (" " + "─" * (width - 5 - len(title)) + "╮", "dim")]
    ]
    for row in rows:
        used = sum(len(text) for text, _ in row)
        out.append([("│ ", "dim"), *row, (" " * max(0, inner - used), ""), (" │", "dim")])
    out.append([("╰" + "─" * (width - 2) + "╯", "dim")])
    return out


def _wrap(text: str, width: int) -> list[str]:
    """Words to lines of at most `width`, keeping the line's own indent; a word longer than
    the width stays whole (a path or a command line is worth more whole than broken)."""
    if not text.strip():
        return []
    indent = text[: len(text) - len(text.lstrip())]
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _paint(line: list[Segment], color: bool) -> str:
    out = []
    for text, style in line:
        if color and style and text.strip():
            out.append(f"\x1b[{STYLES[style]}m{text}\x1b[0m")
        else:
            out.append(text)
    return "".join(out).rstrip()
