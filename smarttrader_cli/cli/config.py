"""`st config`: show, validate and write the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from smarttrader_cli.cli.options import FormatOption, app_context
from smarttrader_cli.cli.output import OutputFormat, emit

app = typer.Typer(help="Show, validate and create the YAML configuration.", no_args_is_help=True)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted keys down to leaves; string maps (storage_options) stay one value."""
    import typing

    from smarttrader_cli.config.coerce import key_type

    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and typing.get_origin(key_type(dotted)) is not dict:
            items.extend(_flatten(value, dotted))
        else:
            items.append((dotted, value))
    return items


@app.command("show")
def show(ctx: typer.Context, fmt: FormatOption = OutputFormat.table) -> None:
    """Print the effective config, where each value came from, and the secrets redacted.

    Example: ST_GOLD__MIN_WIN_RATE=0.5 st config show --format json
    """
    from dataclasses import asdict

    loaded = app_context(ctx).loaded
    rows = []
    for key, value in _flatten(loaded.as_dict()):
        source = loaded.sources.get(key, "default")
        if isinstance(value, dict):  # maps: the source of any entry set outside the defaults
            entry_sources = {s for k, s in loaded.sources.items() if k.startswith(key + ".")}
            source = ", ".join(sorted(entry_sources)) or source
        rows.append({"key": key, "value": value, "source": source})
    for name, value in asdict(loaded.secrets).items():
        from smarttrader_cli.config.loader import SECRET_ENV

        rows.append(
            {
                "key": f"secrets.{name}",
                "value": "***redacted***" if value else "(unset)",
                "source": f"env {SECRET_ENV[name]}",
            }
        )
    title = f"config: {loaded.path or 'embedded defaults'} (hash {loaded.hash})"
    emit(rows, fmt, ["key", "value", "source"], title=title)


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Check the config file and environment overrides; exit 2 with file:line on an error.

    Types, choices and ranges are all checked (e.g. stream.batch_size >= 1, webhook.port
    1-65535, no NaN). Secrets written into the file are accepted with a warning: they
    belong in the environment.

    Example: st --config configs/smarttrader.yaml config validate
    """
    loaded = app_context(ctx).loaded
    count = len(loaded.warnings)
    warned = f", {count} warning{'s' if count > 1 else ''}" if count else ""
    typer.echo(f"config ok: {loaded.path or 'embedded defaults'} (hash {loaded.hash}{warned})")


@app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the config.")] = Path(
        "configs/smarttrader.yaml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the default config, every key with its comment, to PATH.

    Example: st config init ./smarttrader.yaml
    """
    from smarttrader_cli.config import defaults_text
    from smarttrader_cli.errors import UsageError

    if path.exists() and not force:
        raise UsageError(f"{path} exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(defaults_text())
    tmp.replace(path)
    typer.echo(f"wrote {path}")
