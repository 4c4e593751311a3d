"""`st ops schedule`: check the supercronic schedule, or print a seconds-scale copy of it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from smarttrader_cli.errors import EXIT_FAILED

app = typer.Typer(
    help="The supercronic schedule: check it, or compress it for a test run.",
    no_args_is_help=True,
)
FileArgument = Annotated[Path, typer.Argument(help="A crontab file.", exists=True, dir_okay=False)]


def _jobs(file: Path) -> str:
    from smarttrader_cli.ops.schedule import parse_crontab

    text = file.read_text()
    try:
        parse_crontab(text)
    except ValueError as exc:
        sys.stderr.write(f"{file}: {exc}\n")
        raise typer.Exit(EXIT_FAILED) from None
    return text


@app.command("check")
def check(file: FileArgument) -> None:
    """Check that every line of the schedule runs `st --log-format json`; exit 1 if not.

    Example: st ops schedule check crontab/smarttrader.crontab
    """
    from smarttrader_cli.ops.schedule import check_jobs, parse_crontab

    problems = check_jobs(parse_crontab(_jobs(file)))
    for problem in problems:
        sys.stderr.write(f"{file}: {problem}\n")
    if problems:
        raise typer.Exit(EXIT_FAILED)


@app.command("compress")
def compress(
    file: FileArgument,
    fastest: Annotated[int, typer.Option(help="Seconds between 5-minute jobs.")] = 3,
    slowest: Annotated[int, typer.Option(help="Seconds between daily jobs.")] = 30,
    replace: Annotated[
        list[str] | None,
        typer.Option(help="Edit every command: OLD=NEW (repeatable).", metavar="OLD=NEW"),
    ] = None,
) -> None:
    """Print a copy of the schedule where each job keeps its cadence and order but fires
    every few seconds, for the schedule test or to watch the pipeline turn over.

    Example: st ops schedule compress crontab/smarttrader.crontab --replace '--max-seconds 240=--max-seconds 2'
    """
    from smarttrader_cli.ops.schedule import compress as compressed

    pairs = [(old, new) for old, _, new in (item.partition("=") for item in replace or [])]
    sys.stdout.write(compressed(_jobs(file), fastest=fastest, slowest=slowest, replace=pairs))
