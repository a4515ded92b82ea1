"""``python -m scdrbench.metrics ...``"""

from scdrbench.metrics import cli

cli()
