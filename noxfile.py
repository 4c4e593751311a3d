"""Developer sessions: `nox -s tests|lint|demo|bench|docs`.

Every session runs in the CURRENT environment (`venv_backend="none"`): the project venv
made by `scripts/test-all.sh` (or `pip install -e '.[dev]'`) already holds pyspark, dbt,
deltalake and the rest. A nox-managed venv per session would download and install those
hundreds of megabytes again each time, and CI has no time for that.
"""

from __future__ import annotations

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
    """Every benchmark in bench/ (each prints a table and writes bench/results/*.json).

    They run as modules from the project root (`python -m bench.drain`), which is how they
    import the package and the test harness.
    """
    session.chdir(ROOT)
    helpers = {"__init__", "report"}
    for name in sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in helpers):
        _python(session, "-m", f"bench.{name}", *session.posargs)


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Regenerate the generated docs (`python -m smarttrader_cli.docs_gen`)."""
    _python(session, "-m", "smarttrader_cli.docs_gen", *session.posargs)
