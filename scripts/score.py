"""Entry point of the scoring jobs (rules/score.smk): runs scdrbench.metrics.score.cli (the library is the installed package scdrbench)."""

from scdrbench.metrics.score import cli

if __name__ == "__main__":
    cli()
