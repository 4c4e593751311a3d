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

# lint and tests both run so one report shows every failure; either one fails the run
set +e
step "lint: ruff check, ruff format --check, mypy"
lint_rc=0
.venv/bin/ruff check . || lint_rc=1
.venv/bin/ruff format --check . || lint_rc=1
.venv/bin/mypy smarttrader_cli || lint_rc=1

step "tests: pytest (unit, integration, e2e, spark)"
.venv/bin/python -m pytest -p no:cacheprovider -q tests
test_rc=$?
set -e
if [[ $test_rc == 5 ]]; then
  echo "ERROR: pytest collected no tests" >&2
fi

printf '\n==> total %s s: lint %s, pytest exit %s\n' "$(( $(date +%s) - started ))" \
  "$([[ $lint_rc == 0 ]] && echo ok || echo FAILED)" "$test_rc"
if [[ $lint_rc != 0 || $test_rc != 0 ]]; then
  exit 1
fi
