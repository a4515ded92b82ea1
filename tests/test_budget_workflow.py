"""A job killed by its budget leaves a status row; tables and figures still build; a bigger
budget re-runs just that job (the real `snakemake`, tiny data)."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.test_workflow import run_snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = ROOT / "tests" / "config" / "budget.yaml"
# --config merges into the config: t-SNE's own time budget grows from 1 s to 10 min
BIGGER = "budget={'methods': {'tsne': {'time': '10m'}}}"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_budget_status_rows_and_rerun_with_a_bigger_budget(tmp_path):
    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    args = ["--configfile", str(CONFIG), "--cores", "2", "--directory", str(tmp_path)]
    proc = run_snakemake(*args)
    res = tmp_path / "results"
    timing = pd.read_csv(res / "tables" / "timing.tsv", sep="\t").set_index("method")
    assert timing.loc["tsne", "status"] == "timeout"
    assert timing.loc["tsne", "status_message"] == "timeout after 1 s"
    assert timing.loc["random", "status"] == "out_of_memory"
    assert timing.loc["random", "status_message"] == "out of memory at 40 MiB"
    assert timing.loc["pca", "status"] == "ok" and timing.loc["pca", "fit_seconds"] > 0
    # the console names the status and the log file; the log holds it too
    assert "tsne: timeout after 1 s; recorded as its status" in proc.stderr
    log = (res / "logs" / "embed" / "synthetic_tiny" / "tsne.log").read_text()
    assert "job ended with status timeout: timeout after 1 s" in log
    metrics = pd.read_csv(res / "tables" / "metrics.tsv", sep="\t")
    tsne = metrics[metrics["method"] == "tsne"]
    assert tsne["value"].isna().all()
    assert tsne["note"].str.contains("embedding job ended with timeout after 1 s").all()
    assert metrics[metrics["method"] == "pca"]["value"].notna().any()
    for fig in ("comparison.png", "scaling.png", "metrics_heatmap.png"):
        assert (res / "figures" / fig).stat().st_size > 1000
    ranking = pd.read_csv(res / "tables" / "ranking.tsv", sep="\t")
    assert ranking.iloc[0]["method"] == "pca"

    # the same budget again: nothing to do
    proc = run_snakemake(*args, "-n")
    assert "rule embed_python" not in proc.stdout
    # a bigger budget for t-SNE: its job alone runs again, the others' files stay as they were
    pca_file = res / "embed" / "synthetic_tiny" / "pca.h5ad"
    before = sha(pca_file)
    proc = run_snakemake(*args, "-n", "--config", BIGGER)
    assert proc.stdout.count("rule embed_python:") == 1
    assert "embed/synthetic_tiny/tsne.h5ad" in proc.stdout
    run_snakemake(*args, "--config", BIGGER)
    timing = pd.read_csv(res / "tables" / "timing.tsv", sep="\t").set_index("method")
    assert timing.loc["tsne", "status"] == "ok"
    assert timing.loc["random", "status"] == "out_of_memory"
    assert sha(pca_file) == before
    # and with that budget kept, nothing more to do
    proc = run_snakemake(*args, "-n", "--config", BIGGER)
    assert "rule embed_python" not in proc.stdout
    # keys that describe or size a job re-run nothing but the summary (the label is shown)
    overlay = tmp_path / "renamed.yaml"
    overlay.write_text(
        "datasets: {synthetic_tiny: {description: renamed, n_cells: 999}}\n"
        "methods: {pca: {label: 'PCA, renamed', reference: elsewhere}}\n"
    )
    renamed = ["--configfile", str(CONFIG), str(overlay), *args[2:]]
    proc = run_snakemake(*renamed, "-n", "--config", BIGGER)
    for rule in ("prepare_dataset", "preprocess", "embed_python", "score_embedding"):
        assert f"rule {rule}:" not in proc.stdout, rule
    assert "rule timing_table:" in proc.stdout
    run_snakemake(*renamed, "--config", BIGGER)
    timing = pd.read_csv(res / "tables" / "timing.tsv", sep="\t").set_index("method")
    assert timing.loc["pca", "method_label"] == "PCA, renamed"
    assert sha(pca_file) == before
