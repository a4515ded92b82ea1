"""Layers 2 and 3: dry runs, lint, clear config errors through Snakemake, and a tiny real run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scdrbench.common.runtime import TENSORFLOW_QUIET
from tests.conftest import ROOT

pytestmark = pytest.mark.workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
TEST_CONFIG = ROOT / "tests" / "config" / "test.yaml"


def run_snakemake(*args, cwd=ROOT, timeout=600, check=True, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    proc = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_paper_dag_dry_run_is_fast_and_complete(tmp_path):
    start = time.perf_counter()
    proc = run_snakemake("-n", "--cores", "32", "--directory", str(tmp_path))
    elapsed = time.perf_counter() - start
    out = proc.stdout
    for rule in ("download", "prepare_dataset", "preprocess", "embed_python", "embed_tensorflow"):
        assert rule in out
    assert "score_embedding" in out and "comparison_figure" in out
    # every dataset (subsample variants included) x every method is one embedding job
    import yaml

    from scdrbench.common.config import dataset_grid, grid_pairs, validate_config

    cfg = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    # datasets x methods, but ae_citeseq only on cbmc (the one with protein counts)
    n_jobs = len(grid_pairs(cfg, dataset_grid(cfg)))
    assert n_jobs == len(dataset_grid(cfg)) * len(cfg["selection"]["methods"]) - 3
    assert n_jobs >= 20
    assert out.count("rule embed_python:") + out.count("rule embed_tensorflow:") == n_jobs
    print(f"paper DAG dry run: {elapsed:.2f} s")  # measured, reported; not asserted


def test_demo_dry_run(tmp_path):
    proc = run_snakemake(
        "-n", "--profile", str(ROOT / "profiles" / "demo"), "--directory", str(tmp_path)
    )
    import yaml

    from scdrbench.stages.check_config import check

    raw = yaml.safe_load((ROOT / "profiles" / "demo" / "demo.yaml").read_text())
    assert raw["selection"]["methods"] == "all"  # not listed one by one
    demo = check([str(ROOT / "profiles" / "demo" / "demo.yaml")])
    # the paper's 18 less tsne_p350 (paper_only): the essay's methods, the RNA + protein
    # autoencoder, five newer methods, three controls; the large-data settings are paper_only too
    paper_only = [m for m, e in demo["methods"].items() if e["paper_only"]]
    assert paper_only == ["tsne_p350", "tsne_exag", "phate_lean", "densmap_pca", "spectral_lobpcg"]
    assert demo["selection"]["methods"] == [m for m in demo["methods"] if m not in paper_only]
    assert len(demo["selection"]["methods"]) == 17
    # ae_citeseq only where there are protein counts: the simulated set, not pbmc68k
    assert proc.stdout.count("rule embed_") == 2 * 17 - 1
    assert "rule download" not in proc.stdout  # offline


def test_demo_extended_by_a_file_is_the_demo_plus_its_addition(tmp_path):
    """`make demo CONFIG=my.yaml` (its snakemake command, dry run): the demo's data sets and
    methods plus the file's data set, nothing downloaded; a bare --configfile says what it
    replaced."""
    mine = tmp_path / "my.yaml"
    mine.write_text(
        "selection: {datasets: [pbmc68k, synthetic_citeseq, my_small]}\n"
        "datasets:\n  my_small: {source: synthetic, labels: {from: column, column: cell_type},\n"
        "    synthetic: {n_cells: 300, n_genes: 400, n_types: 3, seed: 1}, n_cells: 300}\n"
    )
    make = subprocess.run(
        ["make", "-n", "demo", f"CONFIG={mine}"], cwd=ROOT, capture_output=True, text=True
    )
    assert make.returncode == 0, make.stderr
    line = next(x for x in make.stdout.splitlines() if "bin/snakemake " in x)
    args = line.split("bin/snakemake ", 1)[1].split()
    assert args[:4] == ["--profile", "profiles/demo", "--configfile", "profiles/demo/demo.yaml"]
    assert str(mine) in args
    proc = run_snakemake(*args, "-n", "--directory", str(tmp_path / "run"))
    # pbmc68k and my_small lack protein counts: no ae_citeseq there
    assert "3 data sets x 17 methods = 49 embedding jobs" in proc.stderr
    assert "nothing to download" in proc.stderr and "rule download" not in proc.stdout
    assert proc.stdout.count("rule embed_") == 49
    assert "wildcards: dataset=my_small, method=scvis" in proc.stdout
    bare = run_snakemake(
        "-n", "--profile", "profiles/demo", "--configfile", str(mine), "--directory", str(tmp_path)
    )
    assert "the demo profile's demo.yaml is replaced by your --configfile" in bare.stderr
    assert "make demo CONFIG=my.yaml" in bare.stderr


def test_lint():
    proc = run_snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("unknown_key=1", "unknown config key 'unknown_key'"),
        ("selection={'datasets': ['pbmc68k'], 'methods': ['tnse']}", "unknown method id 'tnse'"),
        ("selection={'datasets': ['pbmc'], 'methods': ['pca']}", "unknown dataset id 'pbmc'"),
    ],
)
def test_bad_config_gives_one_clear_line(tmp_path, override, message):
    proc = run_snakemake("-n", "--directory", str(tmp_path), "--config", override, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_dataset_id_with_dot_is_rejected(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "datasets:\n  my.data:\n    source: scanpy_pbmc68k\n    labels: {from: leiden}\n"
    )
    proc = run_snakemake("-n", "--directory", str(tmp_path), "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "'my.data' is not allowed" in proc.stdout + proc.stderr


def test_offline_download_names_address_and_local_copy(tmp_path):
    cfg = tmp_path / "offline.yaml"
    cfg.write_text(
        "selection: {datasets: [remote], methods: [pca]}\n"
        "datasets:\n  remote:\n    source: h5ad\n    url: http://127.0.0.1:9/data/remote.h5ad\n"
        "    labels: {from: leiden}\n"
    )
    proc = run_snakemake(
        "results/data/remote/counts.h5ad",
        "--cores",
        "1",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(cfg),
        check=False,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "http://127.0.0.1:9/data/remote.h5ad" in text
    assert "results/downloads/remote/remote.h5ad" in text and "datasets.remote.path" in text
    assert not (tmp_path / "results/downloads/remote/remote.h5ad").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The test config through the whole workflow, in a scratch directory."""
    scratch = tmp_path_factory.mktemp("tiny_run")
    start = time.perf_counter()
    proc = run_snakemake(
        "--cores",
        "2",
        "--directory",
        str(scratch),
        "--configfile",
        str(TEST_CONFIG),
        "--show-failed-logs",
        timeout=1500,
        unset=TENSORFLOW_QUIET,  # launched as a user would, without the tests' quiet settings
    )
    print(f"tiny run: {time.perf_counter() - start:.1f} s")
    (scratch / "console.txt").write_text(proc.stderr + proc.stdout)
    return scratch


# Snakemake's own console lines in a run that goes well (its banner, plan, job blocks, progress)
SNAKEMAKE_LINE = re.compile(
    r"$|SNAKEMAKE$|=+$|Building DAG of jobs\.\.\.$|Using shell: |Provided cores: \d+$"
    r"|Rules claiming more threads will be scaled down\.$|Conda environments: ignored$"
    r"|Job stats:$|job +count$|-+ +-+$|\w+ +\d+$|Select jobs to execute\.\.\.$"
    r"|Execute \d+ jobs\.\.\.$|\[\w{3} \w{3} +\d+ [\d:]{8} \d{4}\]$|(local)?rule \w+:$"
    r"|    (input|output|log|jobid|benchmark|reason|wildcards|resources|threads): "
    r"|Shell command: |Finished jobid: \d+ \(Rule: \w+\)$|\d+ of \d+ steps \(\d+%\) done$"
    r"|Complete log\(s\): |Elapsed time: |Assuming unrestricted shared filesystem usage\.$"
    r"|Using (workflow specific )?profiles? .* for setting default command line arguments\.$"
    r"|Config file .* is extended by additional config specified via the command line\.$"
    r"|  (Date|Workflow ID|Platform|Host|User|Snakemake version|Python version|Command"
    r"|Snakefile|Base directory|Run directory|Working directory|Config file\(s\)|Config MD5): "
)


@pytest.mark.slow
def test_tiny_run_console_is_snakemakes_and_scdrbenchs_only(tiny_run):
    """No TensorFlow C++/absl line, no Python warning, no library chatter on the console."""
    lines = (tiny_run / "console.txt").read_text().splitlines()
    ours = [line for line in lines if line.startswith("scdrbench")]
    others = [line for line in lines if not SNAKEMAKE_LINE.match(line) and line not in ours]
    assert others == []
    assert sum(line.startswith("Finished jobid: ") for line in lines) >= 20  # the jobs ran
    assert any(line.startswith("scdrbench: 2 data sets x 4 methods") for line in ours)


@pytest.mark.slow
def test_tiny_run_timing_table(tiny_run):
    import yaml

    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    n_ds, n_m, reps = (
        len(cfg["selection"]["datasets"]),
        len(cfg["selection"]["methods"]),
        cfg["repeats"],
    )
    timing = pd.read_csv(tiny_run / "results/tables/timing.tsv", sep="\t")
    assert len(timing) == n_ds * n_m * reps
    assert set(timing["dataset"]) == set(cfg["selection"]["datasets"])
    assert set(timing["method"]) == set(cfg["selection"]["methods"])
    assert (timing["s"] > 0).all() and (timing["fit_seconds"] >= 0).all()
    assert (timing["peak_rss_mb"] > 50).all()
    # Snakemake's wall time covers the whole job, so it is never below the fit alone.
    assert (timing["s"] + 0.5 >= timing["fit_seconds"]).all()
    # The numbers are Snakemake's own benchmark rows.
    bench = pd.read_csv(tiny_run / "results/benchmarks/embed/pbmc68k/tsne.tsv", sep="\t")
    mine = timing[(timing.dataset == "pbmc68k") & (timing.method == "tsne")]
    assert list(mine["s"].round(4)) == list(bench["s"].round(4))


@pytest.mark.slow
def test_tiny_run_figures_and_metrics(tiny_run):
    png = (tiny_run / "results/figures/comparison.png").read_bytes()
    pdf = (tiny_run / "results/figures/comparison.pdf").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert pdf[:5] == b"%PDF-"
    scaling = (tiny_run / "results/figures/scaling.png").read_bytes()
    assert scaling[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tiny_run / "results/figures/scaling.pdf").read_bytes()[:5] == b"%PDF-"
    metrics = pd.read_csv(tiny_run / "results/tables/metrics.tsv", sep="\t")
    acc = metrics[metrics.metric == "knn_accuracy"].set_index(["dataset", "method"])["value"]
    assert acc[("synthetic_tiny", "tsne")] > acc[("synthetic_tiny", "random")] + 0.3


@pytest.mark.slow
def test_tiny_run_is_complete_and_rerun_is_a_no_op(tiny_run):
    proc = run_snakemake(
        "-n", "--directory", str(tiny_run), "--configfile", str(TEST_CONFIG), "--cores", "2"
    )
    assert "Nothing to be done" in proc.stdout + proc.stderr
    leftovers = [p for p in (tiny_run / "results").rglob("*.tmp")]
    assert leftovers == []
    shutil.rmtree(tiny_run / ".snakemake", ignore_errors=True)
