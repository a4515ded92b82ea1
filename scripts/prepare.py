"""Entry point of the prepare_dataset job (rules/data.smk): runs scdrbench.stages.prepare.cli (the library is the installed package scdrbench)."""

from scdrbench.stages.prepare import cli

if __name__ == "__main__":
    cli()
