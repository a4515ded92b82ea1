"""The paper run's config (benchmarks/paper.yaml): its whole DAG builds (both data sets x all 18
methods, scoring, summary), every job has a budget and the budgets are the generator's, and a
broken copy of it stops with the existing one-line errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import yaml

from scdrbench.common.budget import job_budget
from scdrbench.stages.check_config import check
from tests.conftest import ROOT

PAPER = ROOT / "benchmarks" / "paper.yaml"
INPUTS = [
    "scratch/proxy_1m.h5",
    "scratch/proxy_1m_adt.h5ad",
    "scratch/cbmc_sim_rna.csv.gz",
    "scratch/cbmc_sim_adt.csv.gz",
]


def paper_run():
    import paper_run  # benchmarks/ is on pytest's pythonpath (pyproject.toml)

    return paper_run


def test_paper_config_changes_only_the_data_sources_budgets_and_findings():
    paper = yaml.safe_load(PAPER.read_text())
    assert set(paper) == {"datasets", "budget", "findings"}
    assert set(paper["datasets"]) == {"cbmc", "mouse_brain_1m"}
    for entry in paper["datasets"].values():
        assert set(entry) == {"path", "adt_path", "description"}
    config = check([str(PAPER)])
    assert config["selection"] == check([])["selection"]  # config.yaml's: the paper's selection
    assert len(config["selection"]["methods"]) == 18


def test_every_paper_job_has_a_time_and_memory_budget_from_the_ladder():
    config = check([str(PAPER)])
    for method in config["selection"]["methods"]:
        budget = job_budget(config, "embed", method)
        assert budget.time_s and budget.time_s > 0 and 0 < budget.mem_mb <= 22 * 1024, method
    score = job_budget(config, "score")
    assert score.time_s == 3600 and score.mem_mb == 16 * 1024
    # the file's block is the generator's output from the ladder's measured 1.3M jobs
    assert yaml.safe_load(PAPER.read_text())["budget"] == paper_run().budgets()


def test_budgets_cover_the_ladders_1m_jobs_with_the_margin():
    import pandas as pd

    lad = pd.read_csv(ROOT / "benchmarks" / "results" / "ladder.tsv", sep="\t", comment="#")
    top = lad[(lad["rung"] == 1306127) & (lad["status"] == "ok")].drop_duplicates(
        "method", keep="last"
    )
    config = check([str(PAPER)])
    for row in top.itertuples():
        budget = job_budget(config, "embed", row.method)
        assert budget.time_s >= 1.5 * row.job_s, row.method
        assert budget.mem_mb >= min(1.5 * row.max_rss_mb, 22 * 1024), row.method


@pytest.mark.workflow
def test_paper_dag_dry_run_has_every_method_on_both_data_sets(tmp_path):
    for rel in INPUTS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    shutil.copy(ROOT / "benchmarks" / "results" / "ladder.tsv", tmp_path / "benchmarks/results")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n"]
    cmd += ["--cores", "2", "--configfile", str(PAPER), "--directory", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out, err = proc.stdout, proc.stderr
    methods = check([str(PAPER)])["selection"]["methods"]
    for ds in ("cbmc", "mouse_brain_1m"):
        for m in methods:
            assert f"wildcards: dataset={ds}, method={m}\n" in out, (ds, m)
    assert "4 data sets x 18 methods = 72 embedding jobs" in err
    assert out.count("rule embed_python:") + out.count("rule embed_tensorflow:") == 72
    assert out.count("rule score_embedding:") == 72
    for rule in ("comparison_figure", "metrics_heatmap", "findings", "timing_table"):
        assert f"rule {rule}:" in out
    assert "rule download" not in out  # the local stand-ins, nothing downloaded
    assert "--ladder benchmarks/results/ladder.tsv" in out
    # over its memory budget by its model: a status row, not a job that dies
    assert "will be recorded as skipped: tsne_p350 on mouse_brain_1m" in err
    # every embedding and scoring job runs under a time and a memory budget
    budgets = re.findall(r"budget_time_s=(\d+), budget_mem_mb=(\d+)", out)
    assert len(budgets) == 2 * 72 and all(int(t) > 0 and int(m) > 0 for t, m in budgets)
    assert "budget_time_s=6000, budget_mem_mb=13312" in out  # tsne's: 100m, 13G


def _broken(tmp_path, edit) -> subprocess.CompletedProcess:
    paper = yaml.safe_load(PAPER.read_text())
    edit(paper)
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(paper))
    cmd = [sys.executable, "-m", "scdrbench.stages.check_config", str(path)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "field, value, key, what",
    [
        ("time", "0m", "budget.methods.tsne.time", "not a positive duration"),
        ("time", "-2h", "budget.methods.tsne.time", "not a positive duration"),
        ("time", "long", "budget.methods.tsne.time", "not a positive duration"),
        ("mem", "0G", "budget.methods.tsne.mem", "not a positive memory size"),
        ("mem", "lots", "budget.methods.tsne.mem", "not a positive memory size"),
    ],
)
def test_a_paper_budget_that_is_not_positive_is_one_line(tmp_path, field, value, key, what):
    proc = _broken(tmp_path, lambda p: p["budget"]["methods"]["tsne"].update({field: value}))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scdrbench error: ")
    assert f"config key '{key}': {value!r} is {what}" in lines[0]


def test_a_paper_stage_budget_that_is_not_positive_is_one_line(tmp_path):
    proc = _broken(tmp_path, lambda p: p["budget"]["stages"]["embed"].update(time="0s"))
    assert proc.returncode == 1
    assert "config key 'budget.stages.embed.time': '0s' is not a positive duration" in proc.stderr


def test_citeseq_method_on_the_paper_data_set_without_protein_is_one_line(tmp_path):
    """The proxy without its antibodies and only it selected: ae_citeseq has no protein."""

    def edit(paper):
        del paper["datasets"]["mouse_brain_1m"]["adt_path"]
        methods = check([str(PAPER)])["selection"]["methods"]
        paper["selection"] = {"datasets": ["mouse_brain_1m"], "methods": methods}

    proc = _broken(tmp_path, edit)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ae_citeseq needs protein (ADT) counts" in lines[0]
    assert "selection.methods[" in lines[0]


def test_make_paper_makes_the_inputs_then_runs_and_exports():
    make = subprocess.run(["make", "-n", "paper"], cwd=ROOT, capture_output=True, text=True)
    assert make.returncode == 0, make.stderr
    assert "benchmarks/paper_run.py run --cores 2" in make.stdout
    small = subprocess.run(
        ["make", "-n", "paper", "PAPER_CELLS=20000", "CORES=4", "PAPER_METHODS=pca tsne"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "paper_run.py run --cores 4 --n-cells 20000 --methods pca tsne" in small.stdout


def test_small_paper_run_exports_to_scratch_never_to_the_results(tmp_path, monkeypatch):
    """The export of a run: the products copied beside a README with the machine, versions,
    command and the run's total compute from the jobs' benchmark rows; missing products are
    named."""
    pr = paper_run()
    results = tmp_path / "results"
    (results / "figures").mkdir(parents=True)
    (results / "tables").mkdir()
    (results / "figures" / "comparison.png").write_bytes(b"png")
    (results / "tables" / "findings.md").write_text("# Findings\n")
    for i, s in enumerate((12.5, 100.0)):
        bench = results / "benchmarks" / "embed" / "d" / f"m{i}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text(f"s\th:m:s\tmax_rss\n{s}\t0:00:10\t100\n")
    out = tmp_path / "export"
    pr.export(results, out, command="paper_run.py run --n-cells 2000")
    readme = (out / "README.md").read_text()
    assert (out / "comparison.png").read_bytes() == b"png"
    assert "total compute: 112 s (0.03 h) summed over 2 jobs" in readme
    assert "versions: python" in readme and "machine: " in readme
    assert "not made: figures/comparison.pdf" in readme
