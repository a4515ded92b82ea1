"""Config files Snakemake cannot read (YAML syntax, a missing file), and a config without
``selection``: one line naming the file (and line), never a traceback."""

from __future__ import annotations

import pytest

from scdrbench.stages.check_config import main
from tests.test_workflow import run_snakemake


def test_yaml_syntax_error_names_the_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "mine.yaml"
    bad.write_text("selection:\n  datasets: [pbmc3k\n  methods: [pca]\n")
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"scdrbench error: config file {bad} line 3, column 10: expected ','")
    assert "(while parsing a flow sequence at line 2)" in err and "fix the file there" in err


def test_missing_config_file_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"config file {tmp_path / 'nope.yaml'} does not exist" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("- a\n- b\n", "holds a list, not a mapping of keys"),
        ("methods: {tsne: {params: {perplexity: -3}}}\n", "'methods.tsne.params.perplexity'"),
        ("selection: {methods: [nope]}\n", "nope"),
        # the scoring stage's old name: one line naming the key and the fix
        (
            "threads: {metrics: 2}\n",
            "config key 'threads.metrics': the stage is called 'score' now; "
            "rename the key to 'threads.score'",
        ),
        (
            "budget: {stages: {metrics: {time: 60m}}}\n",
            "config key 'budget.stages.metrics': the stage is called 'score' now; "
            "rename the key to 'budget.stages.score'",
        ),
    ],
)
def test_the_workflow_validation_applies_to_the_merged_files(tmp_path, capsys, text, message):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    assert main([str(f)]) == 1
    assert message in capsys.readouterr().err


def test_a_valid_file_passes(tmp_path, capsys):
    f = tmp_path / "mine.yaml"
    f.write_text("selection: {datasets: [pbmc68k], methods: [pca, tsne]}\n")
    assert main([str(f)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.workflow
def test_a_config_without_selection_says_it_plans_the_paper_run(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 1\n")
    proc = run_snakemake("-n", "--configfile", str(f), "--cores", "2", "--directory", str(tmp_path))
    banner = next(x for x in proc.stderr.splitlines() if x.startswith("scdrbench: "))
    assert "(no 'selection' in yours: config.yaml's, the paper run;" in banner
    assert "downloads (if not there yet): " in banner


@pytest.mark.workflow
def test_a_config_with_the_old_stage_name_is_one_line(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("threads: {metrics: 2}\n")
    proc = run_snakemake(
        "-n", "--configfile", str(f), "--cores", "2", "--directory", str(tmp_path), check=False
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "scdrbench error: config key 'threads.metrics': the stage is called 'score' now; "
        "rename the key to 'threads.score'"
    )
    assert "Traceback" not in proc.stderr
