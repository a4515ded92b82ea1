"""Bad input through the real `snakemake` on tiny data: one line naming the file or key, the
same text in the job's log, and every other file byte-identical afterwards."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, can_in_mount_namespace
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


def test_a_method_that_fails_on_rerun_keeps_its_last_good_result_and_says_so(case):
    before = digests(case)
    overlay = case / "perplexity300.yaml"
    overlay.write_text("methods: {tsne: {params: {perplexity: 300}}}\n")
    with_overlay = ("--configfile", str(CONFIG), str(overlay), "--cores", "2")
    proc = run_snakemake(*with_overlay, "--directory", str(case), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("scdrbench: synthetic_tiny/"))
    assert line.startswith(
        "scdrbench: synthetic_tiny/tsne: error: tsne: params.perplexity 300 is too large for "
        "400 cells"
    )
    assert "; kept the previous result (made " in line
    assert "log: results/logs/embed/synthetic_tiny/tsne.log" in proc.stderr
    log = (case / "results/logs/embed/synthetic_tiny/tsne.log").read_text()
    assert "scdrbench error: tsne: params.perplexity 300 is too large" in log
    assert "kept the previous result" in log
    after = digests(case)
    changed = {p for p in before if after.get(p) != before[p]}
    # the embedding and its scores are the previous ones, byte for byte; only the summary (which
    # marks the kept result), the re-run's log and benchmark, and the state notes changed
    assert "results/embed/synthetic_tiny/tsne.h5ad" not in changed
    assert "results/metrics/synthetic_tiny/tsne.tsv" not in changed
    allowed = ("results/tables/", "results/figures/", "results/logs/", "results/benchmarks/")
    assert {p for p in changed if not p.startswith(allowed) and ".state.json" not in p} == set()
    timing = pd.read_csv(case / "results/tables/timing.tsv", sep="\t")
    row = timing[timing["method"] == "tsne"].iloc[0]
    assert row["status"] == "ok" and np.isnan(row["s"])
    assert row["status_message"].startswith("kept the result of ")
    assert "params.perplexity 300 is too large" in row["status_message"]
    # the scores of the kept embedding are marked in metrics.tsv, the ranking and the findings
    tables = case / "results/tables"
    kept = pd.read_csv(tables / "metrics.tsv", sep="\t").groupby("method")["kept"].first()
    assert kept["tsne"] == row["status_message"] and kept.drop("tsne").isna().all()
    ranking = pd.read_csv(tables / "ranking.tsv", sep="\t").set_index("method")
    assert ranking.loc["tsne", "kept"] == row["status_message"]
    assert "tsne (kept: re-run failed)" in (tables / "metrics.md").read_text()
    findings = (tables / "findings.md").read_text()
    assert "synthetic_tiny / tsne / knn_accuracy = " in findings
    assert "(a kept result: its re-run failed)" in findings
    # the same configuration again: nothing to re-run, and the start says what is kept
    again = run_snakemake(*with_overlay, "--directory", str(case), check=True)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "results/embed/synthetic_tiny/tsne.h5ad: kept the result of" in again.stderr
    # (a later success clears the note: tests/test_keep.py)


def test_a_damaged_embedding_keeps_its_scores_and_the_printed_command_repairs_it(case):
    """The demo extended by a file (its profile, two config files) in another directory: the
    command printed for a cut embedding is run as printed, from where the run was started."""
    emb = case / "results/embed/synthetic_tiny/pca.h5ad"
    emb.write_bytes(emb.read_bytes()[:2000])  # truncated
    start = digests(case)
    others = {k: v for k, v in start.items() if "embed/synthetic_tiny/random" in k}
    figures = {k: v for k, v in start.items() if k.startswith("results/figures/")}
    mine = case / "mine.yaml"  # the tiny selection, without the demo's stability stage
    mine.write_text(CONFIG.read_text() + "stability: {datasets: []}\n")
    demo = ("--profile", "profiles/demo", "--configfile", "profiles/demo/demo.yaml", str(mine))
    proc = run_snakemake(*demo, "--cores", "2", "--directory", str(case), check=False)
    text = proc.stdout + proc.stderr
    expected = "embedding file results/embed/synthetic_tiny/pca.h5ad is not a readable h5ad file"
    assert expected in text
    commands = set(re.findall(r"rebuild it with: (snakemake .*? --forcerun [^\s;]+)", text))
    assert commands == {
        shlex.join(
            ["snakemake", "--snakefile", str(ROOT / "Snakefile"), *demo, "--cores", "2"]
            + ["--directory", str(case), "--forcerun", "results/embed/synthetic_tiny/pca.h5ad"]
        )
    }, commands
    # the scores of the good embedding stay, byte for byte, marked; not NaN rows over them
    kept = "scdrbench: scoring synthetic_tiny/pca: error: embedding file results/embed/"
    assert kept in text and "; kept the previous result (made " in text
    assert (
        "kept the previous result"
        in (case / "results/logs/score/synthetic_tiny/pca.log").read_text()
    )
    metrics = "results/metrics/synthetic_tiny/pca.tsv"
    after = digests(case)
    assert after[metrics] == start[metrics]
    assert all(after[k] == v for k, v in others.items())
    # the figures that could not read it are the previous ones (Snakemake's update() restore)
    for fig in (
        "results/figures/comparison.png",
        "results/figures/embeddings/synthetic_tiny/pca.png",
    ):
        assert after[fig] == figures[fig], fig
    # the command it names, run as printed where the run was started, repairs it
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    repair = subprocess.run(
        commands.pop(), shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert repair.returncode == 0, repair.stderr[-3000:]
    import anndata as ad

    assert ad.read_h5ad(emb).obsm["X_emb"].shape == (400, 2)
    table = pd.read_csv(case / "results/tables/metrics.tsv", sep="\t")
    pca = table[table["method"] == "pca"]
    assert len(pca) and pca["value"].notna().all() and not pca["note"].str.contains("kept").any()
    again = run_snakemake(*demo, "--cores", "2", "--directory", str(case), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "kept the result of" not in again.stderr  # the note is cleared


@pytest.mark.parametrize(
    "overlay, message",
    [
        (
            "datasets: {synthetic_tiny: {labels: {from: file}}}",
            "config key 'datasets.synthetic_tiny.labels': 'file' is a required property",
        ),
        (
            "datasets: {other: {source: synthetic, labels: {from: column}}}",
            "config key 'datasets.other.labels': 'column' is a required property",
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


def _can_mount_read_only() -> bool:
    return can_in_mount_namespace("mount --bind / / && mount -o remount,bind,ro / /")


@pytest.mark.skipif(not _can_mount_read_only(), reason="needs root and mount namespaces (CI has)")
def test_a_read_only_results_folder_is_one_line_and_a_dry_run_still_works(case):
    before = digests(case)
    snakemake = " ".join(
        shlex.quote(x)
        for x in [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
        + ["--configfile", str(CONFIG), "--cores", "1", "--directory", str(case)]
    )
    mount = "mount --bind results results && mount -o remount,bind,ro results"

    def in_read_only(extra):
        return subprocess.run(
            ["unshare", "-m", "sh", "-c", f"{mount} && {snakemake} {extra}"],
            cwd=case,
            capture_output=True,
            text=True,
            timeout=300,
        )

    proc = in_read_only("--forcerun results/embed/synthetic_tiny/random.h5ad")
    assert proc.returncode == 1
    line = next(x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:"))
    assert "results folder" in line and "cannot be written (a read-only file system" in line
    assert "Traceback" not in proc.stderr
    assert in_read_only("-n").returncode == 0
    assert digests(case) == before


def test_bad_data_sets_each_stop_with_one_line_and_nothing_else_changes(case):
    """Three data sets in one run (--keep-going): a local 10x file with 0 cells left after
    dropping empty cells, a cut local 10x file, and 20 cells with n_pcs 20 (a warning)."""
    import h5py

    from scdrbench.data.synthetic import SyntheticSpec, write_tenx_h5

    before = digests(case)
    spec = SyntheticSpec(n_cells=50, n_genes=300, n_types=2, seed=1)
    write_tenx_h5(spec, str(case / "zero.h5"))
    with h5py.File(case / "zero.h5", "r+") as f:
        f["matrix/data"][...] = 0
    write_tenx_h5(spec, str(case / "good.h5"))
    whole = (case / "good.h5").read_bytes()
    (case / "cut.h5").write_bytes(whole[: len(whole) // 2])
    overlay = case / "bad_data.yaml"
    overlay.write_text(
        "selection: {datasets: [zero, cut, few]}\n"
        "datasets:\n"
        "  zero: {source: tenx_h5, path: zero.h5, labels: {from: leiden}}\n"
        "  cut: {source: tenx_h5, path: cut.h5, labels: {from: leiden}}\n"
        "  few: {source: synthetic, synthetic: {n_cells: 20, n_genes: 300, n_types: 2, seed: 1},"
        " labels: {from: column, column: cell_type}}\n"
    )
    targets = [f"results/data/{d}/pca.h5ad" for d in ("zero", "cut", "few")]
    proc = run_snakemake(
        *("--configfile", str(CONFIG), str(overlay), "--cores", "2", "--directory", str(case)),
        *("--keep-going", *targets),
        check=False,
    )
    assert proc.returncode != 0
    errors = [x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:")]
    zero = [x for x in errors if "'zero'" in x]
    cut = [x for x in errors if "cut.h5" in x]
    assert len(zero) == 1 and "0 cells left of 50 read after dropping cells with zero" in zero[0]
    assert len(cut) == 1 and "replace it with a complete copy" in cut[0]
    assert "downloaded" not in cut[0]  # a local file is never "downloaded again"
    assert "log: results/logs/prepare/zero.log" in zero[0]
    assert "0 cells left of 50" in (case / "results/logs/prepare/zero.log").read_text()
    assert "cut.h5" in (case / "results/logs/prepare/cut.log").read_text()
    # the small one is made, with a warning on the console and in its log
    warning = "preprocess.n_pcs 20 lowered to 19: 20 cells x "
    assert f"scdrbench warning: {warning}" in proc.stderr
    assert warning in (case / "results/logs/preprocess/few.log").read_text()
    after = digests(case)
    assert {k: after[k] for k in before} == before


class _CutServer(http.server.BaseHTTPRequestHandler):
    """Sends the first half of a file, no Content-Length, and closes: a cut transfer that no
    header betrays (as some servers and proxies do)."""

    protocol_version = "HTTP/1.0"
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)


def test_a_cut_download_without_size_is_refused_by_the_workflow(case, tmp_path):
    from scdrbench.data.synthetic import SyntheticSpec, write_tenx_h5

    write_tenx_h5(SyntheticSpec(n_cells=50, n_genes=300, n_types=2, seed=1), str(tmp_path / "w.h5"))
    whole = (tmp_path / "w.h5").read_bytes()
    handler = type("H", (_CutServer,), {"body": whole[: len(whole) // 2]})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        before = digests(case)
        overlay = case / "cut_download.yaml"
        url = f"http://127.0.0.1:{httpd.server_address[1]}/w.h5"
        overlay.write_text(
            "selection: {datasets: [remote]}\n"
            f"datasets: {{remote: {{source: tenx_h5, url: '{url}', labels: {{from: leiden}}}}}}\n"
        )
        proc = run_snakemake(
            *("--configfile", str(CONFIG), str(overlay), "--cores", "2", "--directory", str(case)),
            "results/data/remote/pca.h5ad",
            check=False,
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert proc.returncode != 0
    line = next(x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:"))
    assert "w.h5: not a readable HDF5 file" in line, line
    assert "it was removed: re-run to download it again" in line
    assert "log: results/logs/download/remote/w.h5.log" in line
    assert (
        "w.h5: not a readable HDF5 file"
        in (case / "results/logs/download/remote/w.h5.log").read_text()
    )
    assert not (case / "results/downloads/remote/w.h5").exists()  # nothing cut goes on
    assert not (case / "results/data/remote").exists()
    after = digests(case)
    assert {k: after[k] for k in before} == before


def _can_mount_tmpfs() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"])
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs root and mount namespaces (CI has)")
def test_a_full_disk_is_one_line_and_the_next_run_retries_the_job(case):
    """results/embed on a full tmpfs: the re-run of one embedding cannot write its file. One
    line, once; the previous file kept byte for byte; once space is back a plain run retries
    the job, and after that nothing more runs. (tests/test_os_errors.py: the same job alone.)"""
    embed = case / "results/embed"
    emb = embed / "synthetic_tiny/random.h5ad"
    before = emb.read_bytes()
    target = ("--configfile", str(CONFIG), "--cores", "2", "--directory", str(case))
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *target]
    forced = [*snakemake, "results/tables/timing.tsv", "--forcerun", str(emb.relative_to(case))]
    stage = case.parent / "stage"
    # mount a small tmpfs over results/embed, copy its files in, fill it; run; then copy what
    # the run left back onto the real disk (the space is back)
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {embed} && cp -a {stage}/. {embed}/ && "
        f"(dd if=/dev/zero of={embed}/filler bs=4k 2>/dev/null; true) && "
        f"{shlex.join(forced)}; rc=$?; rm {embed}/filler; "
        f"rm -rf {stage} && cp -a {embed} {stage}; exit $rc"
    )
    shutil.copytree(embed, stage)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    shutil.rmtree(embed)
    shutil.copytree(stage, embed)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [x for x in proc.stderr.splitlines() if "No space left on device" in x]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("scdrbench error: synthetic_tiny/random: ")
    assert "cannot write results/embed/synthetic_tiny/random.h5ad: No space left" in lines[0]
    assert "kept the previous result" in lines[0] and "the next run retries it" in lines[0]
    assert "log: results/logs/embed/synthetic_tiny/random.log" in lines[0]
    for noise in ("a bug", "Traceback", "--- Logging error ---", "scdrbench warning"):
        assert noise not in proc.stderr, noise
    log = (case / "results/logs/embed/synthetic_tiny/random.log").read_text()
    assert log.count("No space left on device") == 1
    assert emb.read_bytes() == before
    assert not [p for p in embed.rglob("*") if p.name.endswith(".tmp")]
    timing = pd.read_csv(case / "results/tables/timing.tsv", sep="\t").set_index("method")
    assert "No space left on device" in timing.loc["random", "status_message"]
    # the space is back: a plain run retries that job (and only the ones that read it)
    plan = run(case, "-n", "results/tables/timing.tsv", check=True).stdout
    assert plan.count("rule embed_python:") == 1 and "Params have changed" in plan
    run(case, "results/tables/timing.tsv", check=True)
    timing = pd.read_csv(case / "results/tables/timing.tsv", sep="\t").set_index("method")
    assert timing.loc["random", "status"] == "ok"
    assert timing.loc["random", "status_message"] == "ok"
    again = run(case, "-n", "results/tables/timing.tsv", check=True)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_summary_output_restored_after_a_failure_is_rebuilt_on_the_next_run(case):
    """A cut timing table stops the scaling figure; Snakemake restores the previous figure.
    With the table whole again (and its old modification time), the next plain run draws the
    figure again: nothing but the failure's note can tell Snakemake to."""
    timing = case / "results/tables/timing.tsv"
    whole, stat = timing.read_bytes(), timing.stat()
    timing.write_text("dataset\n")  # cut
    proc = run(case, "results/figures/scaling.png")
    assert proc.returncode != 0
    errors = [x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:")]
    assert len(errors) == 1 and "timing table" in errors[0], proc.stderr[-3000:]
    assert "Restored previous version of results/figures/scaling.png" in proc.stderr
    timing.write_bytes(whole)
    os.utime(timing, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    plan = run(case, "-n", "results/figures/scaling.png", check=True).stdout
    assert "rule scaling_figure:" in plan and "Params have changed" in plan
    run(case, "results/figures/scaling.png", check=True)
    again = run(case, "-n", "results/figures/scaling.png", check=True)
    assert "Nothing to be done" in again.stdout + again.stderr
