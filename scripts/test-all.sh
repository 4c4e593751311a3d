#!/usr/bin/env bash
# Command 2 of the README: install everything and run the full test suite.
#   1. .venv with Python 3.11 (created if missing), `pip install -e '.[dev]'`
#   2. scripts/install-deps.sh (jars, Kafka broker, S3 server, supercronic into the cache)
#   3. lint (ruff check, ruff format --check, mypy) and every test (all markers)
# The cache is $ST_CACHE_DIR or ~/.cache/smarttrader, so a machine reuses it between runs.
set -euo pipefail

started=$(date +%s)
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s (%s s)\n' "$*" "$(( $(date +%s) - started ))"; }

python_bin="${PYTHON:-python3.11}"
if [[ ! -x .venv/bin/python ]]; then
  step "creating .venv with $python_bin"
  command -v "$python_bin" >/dev/null || { echo "ERROR: $python_bin not found" >&2; exit 1; }
  "$python_bin" -m venv .venv
fi
export PATH="$PWD/.venv/bin:$PATH"

step "pip install -e '.[dev]'"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'

step "scripts/install-deps.sh"
PYTHON=.venv/bin/python bash scripts/install-deps.sh

step "lint: ruff check, ruff format --check, mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy smarttrader_cli

step "tests: pytest (unit, integration, e2e, spark)"
set +e
.venv/bin/python -m pytest -p no:cacheprovider -q tests
rc=$?
set -e
if [[ $rc == 5 ]]; then
  echo "ERROR: pytest collected no tests" >&2
fi

printf '\n==> total %s s, pytest exit %s\n' "$(( $(date +%s) - started ))" "$rc"
exit "$rc"
