#!/usr/bin/env bash
# The whole test suite, cheapest first, stopping at the first failure:
# format check, lint, unit tests, dry runs, tiny real run (and the SLURM test when possible).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONDONTWRITEBYTECODE=1
PY=.venv/bin/python
# Test files run in parallel, one pytest-xdist worker per core (TEST_WORKERS overrides; 1 runs them
# in one process); a file's tests stay in one worker, so a module's fixtures are built once.
PAR=(-n "${TEST_WORKERS:-auto}" --dist loadfile)
step() { printf '\n=== %s ===\n' "$*"; }

step "1/5 format check (ruff format, snakefmt)"
.venv/bin/ruff format --check src scripts tests benchmarks
.venv/bin/snakefmt --check Snakefile rules

step "2/5 lint (ruff check, snakemake --lint)"
.venv/bin/ruff check src scripts tests benchmarks
.venv/bin/snakemake --lint

step "3/5 unit tests"
$PY -m pytest -q "${PAR[@]}" -m "not workflow and not slurm" --durations=10

step "4/5 dry runs, lint and config errors through Snakemake"
$PY -m pytest -q "${PAR[@]}" -m "workflow and not slow"

step "5/5 tiny real run"
$PY -m pytest -q "${PAR[@]}" -m "workflow and slow" --durations=10

if [ -f tests/test_slurm.py ]; then
  step "SLURM: the tiny workflow through a real local SLURM"
  $PY -m pytest -q -s -m slurm tests/test_slurm.py
fi
