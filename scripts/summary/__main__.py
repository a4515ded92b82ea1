"""``python -m scripts.summary ...``"""

from scripts.summary import cli

cli()
