"""Check config files before Snakemake reads them (make run / make demo CONFIG=...): runs scdrbench.stages.check_config.main (the library is the installed package scdrbench)."""

from scdrbench.stages.check_config import main

if __name__ == "__main__":
    raise SystemExit(main())
