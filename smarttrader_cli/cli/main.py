"""The `st` root command: global options, command groups, error → exit code mapping."""

from __future__ import annotations

import importlib
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException
from typer.main import solve_typer_info_help
from typer.models import TyperInfo

from smarttrader_cli import __version__
from smarttrader_cli.cli.help import (
    HelpCommand,
    HelpGroup,
    first_paragraph,
    requested_page,
    use_help_pages,
)
from smarttrader_cli.context import AppContext
from smarttrader_cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, StError, first_line

# Command groups, one module each under smarttrader_cli/cli/.
GROUPS = (
    "bronze",
    "silver",
    "gold",
    "helius",
    "webhook",
    "stream",
    "pipeline",
    "lake",
    "runs",
    "config",
    "ops",
    "sim",
    "alerts",
)
# Single commands registered at the root, as (module, function).
ROOT_COMMANDS = (("doctor", "doctor"), ("demo", "demo"), ("follow", "follow"))


class StGroup(HelpGroup):
    """Maps StError to one line on stderr and its exit code; tracebacks only with -v.

    Help pages, of any command, are shown before the global options are converted: a page
    needs none of them, and converting them imports pydantic."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        found = requested_page(ctx, args)
        if found is not None:
            page, exit_code = found
            typer.echo(page.get_help(), color=page.color)
            ctx.exit(exit_code)
        return super().parse_args(ctx, args)

    # The command groups are built (typer reads every command's signature then) when one is
    # used: a help page or a command needs one group, not all of them.
    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name in super().list_commands(ctx) if name not in GROUPS] + list(GROUPS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in GROUPS and cmd_name not in self.commands:
            info = TyperInfo(_GROUP_APPS[cmd_name], name=cmd_name, cls=HelpGroup)
            self.commands[cmd_name] = typer.main.get_group_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
        command = super().get_command(ctx, cmd_name)
        if command is None:  # a typo: typer suggests names from self.commands, so fill it
            for name in GROUPS:
                self.get_command(ctx, name)
        return command

    def summary(self, ctx: typer.Context, name: str) -> str | None:
        """A group's line from its typer app's help alone, without building the group."""
        if name in GROUPS:
            return first_paragraph(solve_typer_info_help(TyperInfo(_GROUP_APPS[name])))
        return super().summary(ctx, name)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except StError as exc:
            obj = ctx.obj if isinstance(ctx.obj, AppContext) else None
            if obj is not None and obj.verbose:
                traceback.print_exc(file=sys.stderr)
            typer.echo(f"st: error: {first_line(exc)}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("st: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except Exception as exc:  # a bug or an unexpected library error: still one line
            obj = ctx.obj if isinstance(ctx.obj, AppContext) else None
            if obj is not None and obj.verbose:
                traceback.print_exc(file=sys.stderr)
            first = first_line(exc, empty="")
            typer.echo(
                f"st: error: unexpected {type(exc).__name__}: {first} (run with -v for the traceback)",
                err=True,
            )
            raise typer.Exit(EXIT_FAILED) from None


app = typer.Typer(
    cls=StGroup,
    name="st",
    help="st, the Smart Trader toolkit: find Solana wallets that trade profitably and follow them.\n\n"
    "Example: st --config configs/smarttrader.yaml pipeline run",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"st {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="ST_CONFIG",
            help="YAML config file (default: configs/smarttrader.yaml or ./smarttrader.yaml).",
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", envvar="ST_LOG_FORMAT", help="Log lines as text or json.")
    ] = "text",
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail; tracebacks on errors.")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """st, the Smart Trader toolkit.

    Example: st --log-format json bronze tokens
    """
    from smarttrader_cli.cli.logs import setup_logging

    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    ctx.obj = AppContext(config_path=config, log_format=log_format, verbose=verbose, quiet=quiet)
    setup_logging(log_format, verbose, quiet)


# Each group's typer app, by name; StGroup builds its click group when it is first used.
_GROUP_APPS: dict[str, typer.Typer] = {}


def _register() -> None:
    for name in GROUPS:
        module = importlib.import_module(f"smarttrader_cli.cli.{name}")
        use_help_pages(module.app)
        _GROUP_APPS[name] = module.app
    for module_name, function in ROOT_COMMANDS:
        module = importlib.import_module(f"smarttrader_cli.cli.{module_name}")
        app.command(name=module_name, cls=HelpCommand)(getattr(module, function))


_register()


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    # cron and supercronic stop jobs with SIGTERM: unwind like Ctrl-C, so the stage's
    # ledger row says "interrupted" instead of staying "running" forever.
    raise KeyboardInterrupt


def run() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        app()
    except StError as exc:  # raised outside a group's invoke (e.g. while parsing)
        typer.echo(f"st: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception:
        traceback.print_exc()
        sys.exit(EXIT_FAILED)
