"""Entry point of the preprocessing jobs (rules/preprocess.smk): runs scdrbench.stages.preprocess.cli (the library is the installed package scdrbench)."""

from scdrbench.stages.preprocess import cli

if __name__ == "__main__":
    cli()
