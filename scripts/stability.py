"""Entry point of the stability jobs (rules/stability.smk): runs scdrbench.stages.stability.cli (the library is the installed package scdrbench)."""

from scdrbench.stages.stability import cli

if __name__ == "__main__":
    cli()
