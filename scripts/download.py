"""Entry point of the download jobs (rules/data.smk): runs scdrbench.data.download.cli (the library is the installed package scdrbench)."""

from scdrbench.data.download import cli

if __name__ == "__main__":
    cli()
