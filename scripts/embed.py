"""Entry point of the embedding jobs (rules/embed.smk): runs scdrbench.stages.embed.cli (the library is the installed package scdrbench)."""

from scdrbench.stages.embed import cli

if __name__ == "__main__":
    cli()
