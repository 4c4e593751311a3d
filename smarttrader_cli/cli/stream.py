"""`st stream`: commands are added as their stage lands."""

from __future__ import annotations

import typer

app = typer.Typer(help="stream commands.", no_args_is_help=True)
