#!/usr/bin/env bash
# Snakemake runs this once in the new environment of envs/tensorflow.yaml (snakemake --sdm conda),
# from its working directory: it installs this checkout's scdrbench in editable mode, without
# dependencies (the env file pins them), as `make venv` does. A pip entry in the env file cannot
# do this: Snakemake copies the env file into .snakemake/conda/ before conda reads it (a relative
# path would point there), and pip's requirements files take no --no-deps.
# Run Snakemake from another directory (--directory)? Set SCDRBENCH_CHECKOUT to the checkout.
set -euo pipefail
checkout="${SCDRBENCH_CHECKOUT:-$PWD}"
if ! grep -qs '^name = "scdrbench"' "$checkout/pyproject.toml"; then
    echo "scdrbench error: $checkout is not the scdrbench checkout (no pyproject.toml of scdrbench); run snakemake from the checkout or set SCDRBENCH_CHECKOUT to it" >&2
    exit 1
fi
python -m pip install --no-deps --editable "$checkout"
