"""What the workflow says and checks once at start-up (``rules/common.smk`` calls ``start_up``).

One line of plan (data sets x methods, the config files, what will be downloaded), this run's
own command for the repair commands its jobs print, a read-only ``results/`` as one line, the
jobs recorded as skipped by their memory model, and results kept through a failed re-run.
"""

from __future__ import annotations

import os
import sys

from scdrbench.common import command
from scdrbench.common.io import check_writable
from scdrbench.common.keep import rerun_failures


def plan_banner(entries: dict, n_methods: int, n_jobs: int, configfiles, root, argv, environ):
    """One line: what will be planned, from which config, and whether it downloads."""
    from scdrbench.stages.check_config import load as load_config_file

    downloads = [
        f"{d} ({e['url']})"
        for d, e in entries.items()
        if "parent" not in e and "url" in e and "path" not in e
    ]
    files = ", ".join(str(f) for f in configfiles) or "config.yaml"
    base = os.path.realpath(os.path.join(root, "config.yaml"))
    yours = [f for f in configfiles if os.path.realpath(f) != base]
    demo = os.path.join(root, "profiles", "demo")
    used = {os.path.realpath(f) for f in configfiles}
    if demo_profile(root, argv, environ) and os.path.realpath(f"{demo}/demo.yaml") not in used:
        files += (
            " (the demo profile's demo.yaml is replaced by your --configfile: extend the "
            "demo with 'make demo CONFIG=my.yaml' or "
            "'--configfile profiles/demo/demo.yaml my.yaml')"
        )
    if yours and not any("selection" in load_config_file(f) for f in yours):
        files += (
            " (no 'selection' in yours: config.yaml's, the paper run; "
            "add 'selection: {datasets: [...], methods: [...]}' to choose)"
        )
    planned = "; ".join(downloads)
    return (
        f"scdrbench: {len(entries)} data sets x {n_methods} methods = {n_jobs} "
        f"embedding jobs, config {files}; "
        + (f"downloads (if not there yet): {planned}" if downloads else "nothing to download")
    )


def demo_profile(root, argv, environ) -> bool:
    """Whether this run's --profile (or $SNAKEMAKE_PROFILE) is the demo's."""
    demo = os.path.join(root, "profiles", "demo")
    given = command.profiles(argv) or [environ.get("SNAKEMAKE_PROFILE", "")]
    paths = {os.path.realpath(demo), os.path.realpath(os.path.join(demo, "config.yaml"))}
    # a relative path is the original directory's: the workflow's, or here (no --directory)
    return any(
        p and {os.path.realpath(p), os.path.realpath(os.path.join(root, p))} & paths for p in given
    )


def dry_run(argv) -> bool:
    """-n / --dry-run on the command line (Snakemake knows it only after parsing the rules)."""
    short = [a for a in argv if a.startswith("-") and not a.startswith("--")]
    return bool({"--dry-run", "--dryrun"} & set(argv)) or any(
        a[1:].isalpha() and "n" in a[1:] for a in short
    )


def start_up(
    entries: dict,
    n_methods: int,
    n_jobs: int,
    overruns,
    workflow,
    argv=None,
    environ=None,
    stream=None,
) -> None:
    """Print the plan and the notes of a start, and check that results/ is writable.

    ``workflow`` is Snakemake's (its config files, base directory, cores and whether this is
    the main process). Raises ScdrbenchError (one line) for a read-only results folder.
    """
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    main = workflow.is_main_process
    banner = plan_banner(
        entries, n_methods, n_jobs, workflow.configfiles, workflow.basedir, argv, environ
    )
    print(banner, file=stream)
    if main:
        # this run's own command, for the repair commands its jobs print (--forcerun <file>):
        # the same profile, config files and directory (scdrbench.common.command)
        environ[command.ENV] = command.run_command(argv, workflow.resource_settings.cores)
    # a read-only results folder: one line now, not Snakemake's exceptions while it plans
    if main and not dry_run(argv):
        check_writable("results")
    for message in overruns:
        print(f"scdrbench: will be recorded as skipped: {message}", file=stream)
    if main:
        # results kept through a failed re-run stay marked until a run of them succeeds
        for path, line in rerun_failures("results"):
            print(f"scdrbench: {path}: {line}", file=stream)
