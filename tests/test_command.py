"""The run's own command in the repair commands jobs print (src/scdrbench/common/command.py)."""

from __future__ import annotations

import shlex

import pytest

from scdrbench.common import command
from scdrbench.common.io import rebuild_hint


@pytest.mark.parametrize(
    "argv, cores, expected",
    [
        ([], 2, "snakemake --cores 2"),
        (["-n", "--cores", "8", "embeddings"], 8, "snakemake --cores 8"),
        (
            ["--profile", "profiles/demo", "--configfile", "profiles/demo/demo.yaml", "my.yaml"]
            + ["--forcerun", "results/x.h5ad", "-p"],
            2,
            "snakemake --profile profiles/demo --configfile profiles/demo/demo.yaml my.yaml "
            "--cores 2",
        ),
        (
            ["-s", "/w/Snakefile", "-d", "/scratch/run", "-c4", "--configfile=my.yaml", "-n"],
            4,
            "snakemake --snakefile /w/Snakefile --directory /scratch/run --cores 4 "
            "--configfile my.yaml",
        ),
        (
            ["--profile", "profiles/slurm", "--config", "seed=1", "repeats=2", "-n", "metrics"],
            64,
            "snakemake --profile profiles/slurm --config seed=1 repeats=2 --cores 64",
        ),
        (
            ["--jobs", "100", "--config", "selection={'datasets': ['a b']}", "-R", "x"],
            None,
            shlex.join(
                ["snakemake", "--jobs", "100", "--config", "selection={'datasets': ['a b']}"]
            ),
        ),
    ],
)
def test_the_command_keeps_what_chooses_the_workflow_and_its_place(argv, cores, expected):
    assert command.run_command(argv, cores) == expected


def test_a_config_value_with_spaces_survives_the_shell():
    argv = ["--cores", "2", "--config", "selection={'datasets': ['a b']}"]
    assert shlex.split(command.run_command(argv))[1:] == argv


def test_the_hint_uses_this_run_s_command(monkeypatch):
    monkeypatch.delenv(command.ENV, raising=False)
    assert rebuild_hint("results/x y.h5ad") == (
        "rebuild it with: snakemake --cores 2 --forcerun 'results/x y.h5ad'"
    )
    monkeypatch.setenv(command.ENV, "snakemake --profile profiles/demo --cores 2")
    assert rebuild_hint("results/embed/d/m.h5ad") == (
        "rebuild it with: snakemake --profile profiles/demo --cores 2 "
        "--forcerun results/embed/d/m.h5ad"
    )


def test_profiles_are_read_from_the_command_line():
    assert command.profiles(["--profile", "profiles/demo", "--profile=site", "-n"]) == [
        "profiles/demo",
        "site",
    ]
