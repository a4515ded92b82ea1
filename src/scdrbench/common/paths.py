"""Where the workflow's own files are (Snakefile, config.yaml, rules/): the checkout whose
src/scdrbench is installed in editable mode by ``make venv``."""

from pathlib import Path

WORKFLOW_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = WORKFLOW_ROOT / "rules" / "config.schema.yaml"
