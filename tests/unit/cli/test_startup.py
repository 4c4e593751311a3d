"""The CLI starts light: no help page loads a heavy library, and the page lookup that makes
that possible reads arguments as click does."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from smarttrader_cli.cli.main import app
from smarttrader_cli.docs_gen import command_paths

# Libraries a help page has no use for: the lake and stream engines, the HTTP stack, config
# parsing, and what typer's own help pages and option conversion import (rich, pydantic).
HEAVY = (
    "deltalake",
    "duckdb",
    "pyspark",
    "dbt",
    "confluent_kafka",
    "pyarrow",
    "pandas",
    "httpx",
    "starlette",
    "uvicorn",
    "orjson",
    "psutil",
    "yaml",
    "rich",
    "pydantic",
    "markdown_it",
    "pygments",
)

# Runs `st ARGS...` for every argument list on stdin, as the console script does, then prints
# the heavy modules loaded by any of them.
PROBE = """
import contextlib, io, json, sys
from smarttrader_cli.cli.main import run
codes = {}
for args in json.load(sys.stdin):
    sys.argv = ["st", *args]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            run()
        except SystemExit as exit:
            codes[" ".join(args)] = [exit.code, "Usage: st" in out.getvalue()]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv_heavy)
print(json.dumps({"heavy": heavy, "codes": codes}))
"""


def _probe(arg_lists: list[list[str]]) -> dict[str, object]:
    code = PROBE.replace("sys.argv_heavy", repr(HEAVY))
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(arg_lists),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def test_no_help_page_imports_a_heavy_library() -> None:
    paths = [path for path, _leaf in command_paths()]
    groups = [path for path, leaf in command_paths() if not leaf]
    assert len(paths) > 40 and ["bronze"] in groups and ["ops", "schedule"] in groups
    # every page by -h/--help, and every group's page shown when it is given no command
    arg_lists = [[*path, "--help"] for path in paths]
    arg_lists += [[*path, "-h"] for path in groups] + groups
    result = _probe(arg_lists)
    assert result["heavy"] == [], f"a help page imported {result['heavy']}"
    codes = result["codes"]
    assert isinstance(codes, dict)
    for args in arg_lists:
        exit_code, printed_page = codes[" ".join(args)]
        asked = bool(args) and args[-1] in ("-h", "--help")
        assert printed_page and exit_code in ((0, None) if asked else (2,)), (args, exit_code)


def test_help_flag_is_found_as_click_parses_it() -> None:
    runner = CliRunner()
    # "-h" as an option's value is that value (an invalid format here), not a help request
    bad = runner.invoke(app, ["config", "show", "--format", "-h"], prog_name="st")
    assert bad.exit_code == 2 and "Usage: st" not in bad.stdout, bad.output
    assert "Invalid value" in bad.output
    # the global options before a page are not needed for it
    page = runner.invoke(app, ["-c", "/nonexistent.yaml", "-v", "runs", "list", "-h"])
    assert page.exit_code == 0 and "Usage: st runs list" in page.stdout, page.output
    # --version acts even when a command follows, as before
    version = runner.invoke(app, ["--version", "bronze"])
    assert version.exit_code == 0 and version.stdout.startswith("st "), version.output
    # an unknown command is still a usage error, --help or not, with typer's suggestion
    unknown = runner.invoke(app, ["bronze", "nope", "--help"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output
    typo = runner.invoke(app, ["brnze", "--help"])
    assert typo.exit_code == 2 and "Did you mean 'bronze'?" in typo.output, typo.output


def test_help_is_coloured_only_for_a_terminal() -> None:
    env: dict[str, str | None] = {"COLUMNS": "100", "NO_COLOR": None}
    coloured = CliRunner().invoke(app, ["lake", "query", "-h"], env=env, color=True)
    assert "\x1b[1;36m--format\x1b[0m" in coloured.output, coloured.output
    plain = CliRunner().invoke(app, ["lake", "query", "-h"], env=env, color=False)
    assert "\x1b[" not in plain.output and "-f, --format <table|json|csv>" in plain.output
    assert "Example: st lake query" in plain.output
    assert all(len(line) <= 100 for line in plain.output.splitlines())


def test_version_and_unknown_command_exit_codes() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "smarttrader_cli", "--version"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.startswith("st ")
    bad = subprocess.run(
        [sys.executable, "-m", "smarttrader_cli", "no-such-command"], capture_output=True, text=True
    )
    assert bad.returncode == 2
