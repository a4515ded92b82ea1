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
        # the job's peak: Snakemake's sampled one or the kernel's high-water mark, the larger
        peak = max(row.max_rss_mb, row.peak_rss_mb)
        assert budget.mem_mb >= min(1.5 * peak, 22 * 1024), row.method


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
    assert "will be recorded as skipped: densmap on mouse_brain_1m (" in err
    assert "skipped: densmap on mouse_brain_1m_n100000" not in err
    # docs/paper-run.md names the skipped jobs: they are these
    for ds in ("mouse_brain_1m", "mouse_brain_1m_n100000"):
        assert f"will be recorded as skipped: spectral on {ds} (" in err
    assert "skipped: phate on" not in err
    # every embedding and scoring job runs under a time and a memory budget
    budgets = re.findall(r"budget_time_s=(\d+), budget_mem_mb=(\d+)", out)
    assert len(budgets) == 2 * 72 and all(int(t) > 0 and int(m) > 0 for t, m in budgets)
    tsne = job_budget(check([str(PAPER)]), "embed", "tsne")  # its own, from the ladder
    assert f"budget_time_s={tsne.time_s:.0f}, budget_mem_mb={tsne.mem_mb:.0f}" in out


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


def test_amdahl_and_longest_first_scheduling():
    import paper_estimate as pr

    # a job that kept both threads busy is all parallel: 8 threads take a quarter of 2's time
    assert pr.amdahl_seconds(100, 200, 2, 8) == pytest.approx(25)
    # one that used one thread gains nothing; one thread measured: its CPU time
    assert pr.amdahl_seconds(100, 100, 2, 8) == pytest.approx(100)
    assert pr.amdahl_seconds(50, 60, 1, 8) == pytest.approx(60)
    # 1.5 threads used of 2: p = 2/3, 8 threads: 150 s x (1/3 + 1/12)
    assert pr.amdahl_seconds(100, 150, 2, 8) == pytest.approx(62.5)
    assert pr.lpt_makespan([4, 3, 3, 2], 2) == 6  # longest first: 4 + 2, 3 + 3
    assert pr.lpt_makespan([10, 1, 1], 4) == 10


def write_ladder(path, rows):
    columns = ["method", "rung", "proxy_version", "status", "job_s", "cpu_s"]
    lines = ["# a ladder of the test", "\t".join(columns)]
    lines += ["\t".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_estimate_reads_the_ladder_rows_power_laws_and_skips(tmp_path):
    """Each paper job from the ladder: the row at its rung (the calibrated proxy's over the
    earlier one), else the method's power law; skipped by the memory model: 0 s; deterministic
    UMAP at its one-thread time; methods never measured are listed, not counted."""
    import paper_estimate as pr

    ladder = tmp_path / "ladder.tsv"
    rows = []
    for rung, s in ((10000, 0.1), (100000, 1), (1306127, 13.06127)):
        rows.append(("pca", rung, 4, "ok", s, s))
    rows += [("pca", 1306127, 1, "ok", 999, 999)]  # the earlier proxy's: not used
    rows += [("ae_keras", 10000, 4, "ok", 2, 3), ("ae_keras", 100000, 4, "ok", 20, 30)]
    rows += [
        ("umap", 1306127, 4, "ok", 1000, 1800),
        ("tsne", 1306127, 4, "timeout after 100 min", "", ""),
    ]
    write_ladder(ladder, rows)
    jobs, totals = pr.estimate(ladder)
    job = jobs.set_index(["dataset", "method"])
    assert len(jobs) == totals["jobs"] == 4 * 18  # 3 rungs of the 1.3M cells + CBMC, 18 methods
    assert job.at[("mouse_brain_1m", "pca"), "s_2"] == pytest.approx(13.06127)
    assert job.at[("cbmc", "pca"), "ladder_rung"] == 10000
    # power law through 10k and 100k (exponent 1), to 1.3M
    assert job.at[("mouse_brain_1m", "ae_keras"), "s_2"] == pytest.approx(261.2254)
    assert "power law n^1.00" in job.at[("mouse_brain_1m", "ae_keras"), "source"]
    # config.yaml's UMAP is deterministic, one thread: its CPU seconds, no gain from 8 threads
    assert (
        job.at[("mouse_brain_1m", "umap"), "s_2"]
        == job.at[("mouse_brain_1m", "umap"), "s_8"]
        == 1800
    )
    # openTSNE at perplexity 350 on 1.3M cells is over its 22 GiB by its memory model
    assert job.at[("mouse_brain_1m", "tsne_p350"), "s_2"] == 0
    assert job.at[("mouse_brain_1m", "tsne_p350"), "source"].startswith("skipped")
    # stopped by its budget on the ladder: the paper budget's time
    assert job.at[("mouse_brain_1m", "tsne"), "source"].startswith("stopped by its budget")
    tsne_budget = job_budget(check([str(PAPER)]), "embed", "tsne").time_s
    assert job.at[("mouse_brain_1m", "tsne"), "s_2"] == tsne_budget
    # predicted past its budget: stopped there on 2 cores, said so
    rows += [("scvis", 10000, 4, "ok", 100, 100), ("scvis", 100000, 4, "ok", 1e4, 1e4)]
    write_ladder(ladder, rows)
    scvis = pr.estimate(ladder)[0].set_index(["dataset", "method"]).loc[("mouse_brain_1m", "scvis")]
    assert scvis["s_2"] == job_budget(check([str(PAPER)]), "embed", "scvis").time_s
    assert "stopped by its budget" in scvis["source"] and scvis["s_8"] > scvis["s_2"]
    assert "pacmap" in totals["unmeasured"] and pd_isna(job.at[("cbmc", "pacmap"), "s_2"])
    counted = jobs["s_2"].dropna()
    assert totals["seconds_2_cores"] == pytest.approx(counted.sum())
    assert totals["makespan_32"] >= max(jobs["s_8"].dropna().max(), jobs["s_8"].sum() / 4)
    text = pr.write_estimate(jobs, totals, tmp_path / "paper_estimate")
    assert "Not counted:" in text and (tmp_path / "paper_estimate.md").exists()
    head = (tmp_path / "paper_estimate.tsv").read_text().splitlines()
    assert head[0].startswith("# The paper run's cost") and any("command:" in h for h in head)


def pd_isna(value):
    import pandas as pd

    return pd.isna(value)


def test_paper_config_names_the_methods_without_a_measured_budget():
    """The comment above the budget block lists exactly the selected methods the generator gave
    no budget of their own (the ladder has no finished 1.3M job of theirs)."""
    text = PAPER.read_text()
    comments = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    named = re.search(r"without a finished 1\.3M job in the ladder \(([^)]*)\)", comments)
    assert named, "the comment naming the methods without a measured budget is missing"
    listed = [m.strip() for m in named.group(1).split(",")]
    config = check([])
    own = paper_run().budgets()["methods"]
    assert listed == [m for m in config["selection"]["methods"] if m not in own]
