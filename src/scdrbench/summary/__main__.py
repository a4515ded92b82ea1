"""``python -m scdrbench.summary ...``: the summary command line (:mod:`scdrbench.summary.cli`)."""

from scdrbench.summary.cli import cli

cli()
