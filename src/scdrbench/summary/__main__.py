"""``python -m scdrbench.summary ...``"""

from scdrbench.summary import cli

cli()
