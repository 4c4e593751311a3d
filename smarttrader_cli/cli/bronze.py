"""`st bronze`: commands are added as their stage lands."""

from __future__ import annotations

import typer

app = typer.Typer(help="bronze commands.", no_args_is_help=True)
