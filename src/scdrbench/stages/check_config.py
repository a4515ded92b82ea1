"""Check config files before Snakemake reads them: ``python -m scdrbench.stages.check_config my.yaml``.

Snakemake parses ``--configfile`` in its command line, before the workflow's own checks run,
and reports a YAML syntax error without the file or the line ("Config file is not valid JSON or
YAML") and a missing file with a traceback. This command (run by ``make run CONFIG=...`` and
``make dryrun``) says it in one line naming the file, the line and the column, then applies the
workflow's own validation to config.yaml extended by the files, as Snakemake would merge them.
Exit 0: valid; exit 1: one ``scdrbench error:`` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from scdrbench.common.config import validate_config
from scdrbench.common.errors import ConfigError
from scdrbench.common.paths import WORKFLOW_ROOT as ROOT


def load(path: str | Path) -> dict:
    """One config file as a mapping, or a ConfigError naming the file (and line, column)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist; give the path of your YAML file to --configfile"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "not valid YAML"
        if err.context and err.context_mark and err.problem_mark:
            problem += f" ({err.context} at line {err.context_mark.line + 1})"
        raise ConfigError(
            f"config file {path}{where}: {problem} (YAML syntax); fix the file there"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid YAML ({err}); fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} holds a {type(data).__name__}, not a mapping of keys; "
            "start it with keys such as 'selection:'"
        )
    return data


def check(files: list[str]) -> dict:
    """config.yaml extended by ``files``, validated; raises ConfigError."""
    from snakemake.utils import update_config  # the merge Snakemake applies to --configfile

    config = load(ROOT / "config.yaml")
    for f in files:
        update_config(config, load(f))
    return validate_config(config)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="*", help="config files, as given to --configfile")
    a = p.parse_args(argv)
    try:
        check(a.files)
    except ConfigError as err:
        print(f"scdrbench error: {err}", file=sys.stderr)
        return 1
    print(f"scdrbench: config.yaml {' '.join(a.files)}: valid".replace("  ", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
