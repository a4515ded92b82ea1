"""Bad input through the real `snakemake` on tiny data: one line naming the file or key, the
same text in the job's log, and every other file byte-identical afterwards."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_workflow import run_snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

CONFIG = ROOT / "tests" / "config" / "e2e.yaml"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete tiny run, copied afresh for each case."""
    base = tmp_path_factory.mktemp("e2e") / "base"
    base.mkdir()
    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, base / name)
    run_snakemake("--configfile", str(CONFIG), "--cores", "2", "--directory", str(base))
    return base


@pytest.fixture
def case(finished, tmp_path):
    where = tmp_path / "case"
    shutil.copytree(finished, where, symlinks=True)
    return where


def digests(where: Path) -> dict[str, str]:
    return {
        str(p.relative_to(where)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((where / "results").rglob("*"))
        if p.is_file()
    }


def run(where, *extra, check=False):
    return run_snakemake(
        "--configfile",
        str(CONFIG),
        "--cores",
        "2",
        "--directory",
        str(where),
        *extra,
        check=check,
    )


def test_a_method_that_fails_on_rerun_is_recorded_and_nothing_else_changes(case):
    before = digests(case)
    overlay = case / "perplexity300.yaml"
    overlay.write_text("methods: {tsne: {params: {perplexity: 300}}}\n")
    proc = run_snakemake(
        "--configfile",
        str(CONFIG),
        str(overlay),
        "--cores",
        "2",
        "--directory",
        str(case),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = (
        "scdrbench: synthetic_tiny/tsne: error: tsne: params.perplexity 300 is too large for "
        "400 cells"
    )
    assert line in proc.stderr
    assert "log: results/logs/embed/synthetic_tiny/tsne.log" in proc.stderr
    log = (case / "results/logs/embed/synthetic_tiny/tsne.log").read_text()
    assert "scdrbench error: tsne: params.perplexity 300 is too large" in log
    after = digests(case)
    for path in before:
        if "/tsne" in path or path.startswith("results/tables") or "figures" in path:
            continue  # t-SNE's own files and the summary that shows its failure
        if path.startswith(("results/benchmarks/", "results/logs/")):
            continue
        assert after[path] == before[path], path


def test_a_damaged_result_names_itself_and_the_command_that_rebuilds_it(case):
    emb = case / "results/embed/synthetic_tiny/pca.h5ad"
    emb.write_bytes(emb.read_bytes()[:2000])  # truncated
    others = {k: v for k, v in digests(case).items() if "embed/synthetic_tiny/random" in k}
    proc = run(case)
    text = proc.stdout + proc.stderr
    expected = "embedding file results/embed/synthetic_tiny/pca.h5ad is not a readable h5ad file"
    assert expected in text
    assert (
        "rebuild it with: snakemake --cores 2 --forcerun results/embed/synthetic_tiny/pca.h5ad"
        in text
    )
    metrics = (case / "results/metrics/synthetic_tiny/pca.tsv").read_text()
    assert "not scored: the score job ended with error: embedding file" in metrics
    after = digests(case)
    assert all(after[k] == v for k, v in others.items())
    # the command it names repairs it
    run(case, "--forcerun", "results/embed/synthetic_tiny/pca.h5ad", check=True)
    assert "pca" in (case / "results/tables/metrics.tsv").read_text()


@pytest.mark.parametrize(
    "overlay, message",
    [
        (
            "datasets: {synthetic_tiny: {labels: {from: file}}}",
            "config key 'datasets.synthetic_tiny.labels': 'file' is a required property",
        ),
        (
            "methods: {tsne: {params: {perplexty: 30}}}",
            "unknown config key 'methods.tsne.params.perplexty'",
        ),
        ("budget: {stages: {embed: {time: soon}}}", "'budget.stages.embed.time'"),
        (
            "datasets: {tiny_n100: {source: scanpy_pbmc68k, labels: {from: leiden}}}",
            "ids ending in _n<digits>",
        ),
    ],
)
def test_bad_config_stops_before_any_job_and_changes_nothing(case, overlay, message):
    before = digests(case)
    bad = case / "bad.yaml"
    bad.write_text(overlay + "\n")
    proc = run_snakemake(
        "--configfile",
        str(CONFIG),
        str(bad),
        "--cores",
        "2",
        "--directory",
        str(case),
        check=False,
    )
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:"))
    assert message in line
    assert "Traceback" not in proc.stderr and 'File "' not in proc.stderr
    assert {k: v for k, v in digests(case).items() if k != "bad.yaml"} == before
