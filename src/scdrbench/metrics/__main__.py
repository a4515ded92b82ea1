"""``python -m scdrbench.metrics ...``: the scoring job (:mod:`scdrbench.metrics.score`)."""

from scdrbench.metrics.score import cli

cli()
