"""Developer sessions: `nox -s tests|lint|demo|bench|docs`.

Every session runs in the CURRENT environment (`venv_backend="none"`): the project venv
made by `scripts/test-all.sh` (or `pip install -e '.[dev]'`) already holds pyspark, dbt,
deltalake and the rest. A nox-managed venv per session would download and install those
hundreds of megabytes again each time, and CI has no time for that.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent


def _python(session: nox.Session, *args: str) -> None:
    session.run(sys.executable, *args, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """All tests: unit, integration, e2e, spark (pass pytest args after `--`)."""
    _python(session, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests", *session.posargs)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy on the package."""
    _python(session, "-m", "ruff", "check", ".")
    _python(session, "-m", "ruff", "format", "--check", ".")
    _python(session, "-m", "mypy", "smarttrader_cli")


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """`st demo`: the simulator-backed walk through every stage."""
    st = Path(sys.executable).with_name("st")
    session.run(str(st), "demo", *session.posargs, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Every bench/*.py script (each prints a table and writes bench/results/*.json)."""
    scripts = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        session.skip("no benchmark scripts in bench/")
    for script in scripts:
        _python(session, str(script), *session.posargs)


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Regenerate docs/cli.md from the commands' --help."""
    if importlib.util.find_spec("smarttrader_cli.docs_gen") is None:
        session.skip("smarttrader_cli.docs_gen does not exist yet")
    _python(session, "-m", "smarttrader_cli.docs_gen", *session.posargs)
