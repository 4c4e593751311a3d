"""`python -m smarttrader_cli` runs the `st` CLI."""

from smarttrader_cli.cli.main import run

run()
