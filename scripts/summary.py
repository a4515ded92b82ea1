"""Entry point of the summary jobs (rules/summary.smk): runs scdrbench.summary.cli.cli (the library is the installed package scdrbench)."""

from scdrbench.summary.cli import cli

if __name__ == "__main__":
    cli()
