"""The run's own ``snakemake`` command, so that a repair command a job prints works in that run.

The main Snakemake process (``rules/common.smk``) keeps, from its command line, the options that
say which workflow, configuration and place this run is: ``--profile``, ``--workflow-profile``,
``--snakefile``, ``--directory``, ``--configfile``, ``--config`` and ``--cores``/``--jobs``
(:func:`run_command`), and puts them into the environment variable :data:`ENV`, which every job
inherits. :func:`scdrbench.common.io.rebuild_hint` appends ``--forcerun <file>`` to it. Run from
the same directory as the run that printed it, the command sees the same data sets, methods and
results (the demo's profile and config files included); targets, ``-n`` and the like are left
out. Outside a workflow the command is :data:`DEFAULT`.
"""

from __future__ import annotations

import os
import shlex

#: the environment variable the main Snakemake process sets for its jobs
ENV = "SCDRBENCH_SNAKEMAKE"
#: the command when a script runs outside a workflow
DEFAULT = "snakemake --cores 2"

# option -> its aliases; the options with several values (nargs "+"/"*") are in _MANY
_KEPT = {
    "--profile": (),
    "--workflow-profile": (),
    "--snakefile": ("-s",),
    "--directory": ("-d",),
    "--configfile": ("--configfiles",),
    "--config": ("-C",),
    "--cores": ("-c",),
    "--jobs": ("-j",),
}
_NAMES = {alias: name for name, aliases in _KEPT.items() for alias in (name, *aliases)}
_MANY = {"--configfile", "--config"}


def run_command(argv: list[str], cores=None) -> str:
    """``snakemake`` with the options of ``argv`` (a Snakemake command line without the program)
    that choose the workflow, its configuration and its place, in their order; ``--cores
    <cores>`` added when ``argv`` sets neither ``--cores`` nor ``--jobs`` (a profile's)."""
    kept: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        name, _, attached = token.partition("=")
        if name not in _NAMES and token[:2] in ("-c", "-j", "-s", "-d") and len(token) > 2:
            name, attached = token[:2], token[2:]  # -c2, -sSnakefile
        if name not in _NAMES:
            continue
        values = [attached] if attached else []
        while i < len(argv) and not (argv[i].startswith("-") and len(argv[i]) > 1):
            if values and _NAMES[name] not in _MANY:
                break
            values.append(argv[i])
            i += 1
        kept += [_NAMES[name], *values]
    if cores is not None and not {"--cores", "--jobs"} & set(kept):
        kept += ["--cores", str(cores)]
    return shlex.join(["snakemake", *kept])


def current() -> str:
    """This run's command (:data:`ENV`), or :data:`DEFAULT` outside a workflow."""
    return os.environ.get(ENV) or DEFAULT


def profiles(argv: list[str]) -> list[str]:
    """The ``--profile`` values of a Snakemake command line."""
    words = shlex.split(run_command(argv))
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--profile"]
