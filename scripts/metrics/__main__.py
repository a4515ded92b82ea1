"""``python -m scripts.metrics ...``"""

from scripts.metrics import cli

cli()
