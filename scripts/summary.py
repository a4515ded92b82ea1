"""Entry point of the summary jobs (rules/summary.smk): runs scdrbench.summary.cli (the library is the installed package scdrbench)."""

from scdrbench.summary import cli

if __name__ == "__main__":
    cli()
