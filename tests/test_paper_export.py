"""The paper run's export (benchmarks/paper_export.py): the products and a README of how they
were made, the run's total compute from its own jobs (re-runs included), what each part shared
the machine with, the 32-core time, each job against its prediction, the 1.3M figure."""

from __future__ import annotations

from tests.test_paper_config import paper_run


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
        write_bench(results / "benchmarks" / "embed" / "d" / f"m{i}.tsv", s)
    out = tmp_path / "export"
    pr.export(results, out, command="paper_run.py run --n-cells 2000")
    readme = (out / "README.md").read_text()
    assert (out / "comparison.png").read_bytes() == b"png"
    assert "total compute: 112 s (0.03 h) summed over 2 jobs" in readme
    assert "by stage (seconds, jobs): embed 112 s (2)" in readme
    assert "versions: python" in readme and "machine: " in readme
    assert "not made: figures/comparison.pdf" in readme


def write_bench(path, s, cpu=None):
    """A Snakemake benchmark row of ``s`` wall and ``cpu`` CPU seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cpu = s if cpu is None else cpu
    path.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{s}\t0:00:10\t100\t{cpu}\n")


def export_readme(results, out, methods):
    """The export's README for a run of ``methods`` on one data set "big" of 1,000 cells."""
    import paper_export

    config = {
        "selection": {"datasets": ["big"], "methods": methods},
        "datasets": {"big": {"n_cells": 1000}},
        "threads": {"embed": 8},
    }
    paper_export.export(results, out, command="paper_run.py export", config=config)
    return (out / "README.md").read_text()


def test_the_paper_runs_compute_counts_its_own_jobs_not_the_ladders_beside_them(tmp_path):
    """results/ shared with the scaling ladder: the run's total compute sums the jobs of its own
    data sets (every stage) and the summary's, never the ladder's rungs'."""
    import paper_export

    results = tmp_path / "results"
    write_bench(results / "benchmarks" / "prepare" / "cbmc.tsv", 10)
    write_bench(results / "benchmarks" / "prepare" / "proxy_1m.tsv", 269)
    write_bench(results / "benchmarks" / "embed" / "cbmc" / "tsne.tsv", 50)
    write_bench(results / "benchmarks" / "embed" / "big_n100" / "umap.tsv", 20)
    write_bench(results / "benchmarks" / "embed" / "proxy_1m_n300000" / "tsne.tsv", 705)
    write_bench(results / "benchmarks" / "score" / "big_n100" / "umap.tsv", 5)
    write_bench(results / "benchmarks" / "summary" / "timing.tsv", 2)
    seconds, jobs = paper_export.total_compute(results, {"cbmc", "big", "big_n100"})
    assert (seconds, jobs) == (87, 5)
    assert paper_export.total_compute(results) == (1061, 7)  # no data sets given: every job


def test_a_paper_run_over_sittings_names_each_part_and_what_a_big_node_needs(tmp_path):
    """Each `run` appends its when, machine, cores and command; the export lists them and
    the 32-core time of the embedding jobs (Amdahl from each job's CPU use, longest first)."""
    import paper_export

    results = tmp_path / "results"
    paper_export.record_sitting(results, 2, "paper_run.py run --cores 2 results/a.tsv")
    paper_export.record_sitting(results, 2, "paper_run.py run --cores 2")
    # two jobs that kept both threads busy (1/4 of their time on 8), one on one thread
    for m, s, cpu in (("a", 400, 800), ("b", 400, 800), ("c", 300, 300)):
        write_bench(results / "benchmarks" / "embed" / "big" / f"{m}.tsv", s, cpu)
    readme = export_readme(results, tmp_path / "export", ["a", "b", "c"])
    # on 4 slots: c alone 300 s, a and b 200 s each: the longest job decides, 5 min
    assert "on a 32-core node: about 5 min for the embedding jobs (4 at once, 8 threads" in readme
    assert "ran in 2 part(s):\n" in readme and "(2 cores): `paper_run.py run --cores 2`" in readme
    # no embedding file for the largest data set: its figure is named as not made
    assert "not made: " in readme and "comparison_big.png" in readme


def test_a_part_names_what_shared_the_machine_and_an_old_sittings_file_gets_the_column(
    tmp_path,
):
    """``run --shared-with``: each part says what else ran beside it; a sittings file written
    before the column existed keeps its rows, marked "not recorded"."""
    import paper_export

    results = tmp_path / "results"
    results.mkdir()
    old = "started_utc\tmachine\tcores\tcommand\n2026-12-06 15:46\tvm: X\t2\tpaper_run.py run\n"
    (results / paper_export.SITTINGS).write_text(old)
    paper_export.record_sitting(results, 2, "paper_run.py run a.tsv", "pytest at nice 19\n(30 s)")
    paper_export.record_sitting(results, 2, "paper_run.py run b.tsv")
    lines = (results / paper_export.SITTINGS).read_text().splitlines()
    assert lines[0].split("\t") == paper_export.SITTING_COLUMNS
    assert lines[1].split("\t")[1:] == ["vm: X", "2", "paper_run.py run", "not recorded"]
    assert lines[2].endswith("\tpaper_run.py run a.tsv\tpytest at nice 19 (30 s)")
    assert lines[3].endswith("\tpaper_run.py run b.tsv\tnot declared")
    paper_export.export(results, tmp_path / "export", command="paper_run.py export")
    readme = (tmp_path / "export" / "README.md").read_text()
    # one line per part, oldest first
    parts = [line for line in readme.splitlines() if line.startswith("  - ")]
    assert len(parts) == 3 and "ran in 3 part(s):\n" in readme
    assert parts[0].endswith("(2 cores): `paper_run.py run`, beside it: not recorded")
    assert parts[1].endswith("`paper_run.py run a.tsv`, beside it: pytest at nice 19 (30 s)")
    assert parts[2].endswith("`paper_run.py run b.tsv`, beside it: not declared")


def test_a_parts_targets_read_as_one_brace_group_per_folder_and_the_quotes_stay():
    """A part of 18 targets names them once per folder, in the shell's brace form, so the
    export's list of parts reads; quoted words stay quoted, as typed."""
    import shlex
    import subprocess

    import paper_export

    methods = ["random", "pca", "tsne"]
    command = shlex.join(
        ["paper_run.py", "run", "--cores", "2", "--shared-with", "logs, docs (light)"]
        + [f"results/metrics/cbmc/{m}.tsv" for m in methods]
        + ["results/metrics/big/pca.tsv", "results/data/big/pca.h5ad"]
    )
    assert paper_export.short_command(command) == (
        "paper_run.py run --cores 2 --shared-with 'logs, docs (light)' "
        "results/metrics/cbmc/{random,pca,tsne}.tsv results/metrics/big/pca.tsv "
        "results/data/big/pca.h5ad"
    )
    # bash expands the brace form back to the targets as typed
    echo = subprocess.run(
        ["bash", "-c", "printf '%s\\n' " + paper_export.short_command(command)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert echo.stdout.splitlines() == shlex.split(command)
    assert paper_export.short_command("paper_run.py run") == "paper_run.py run"
    # a comma would split a brace group: such a path stays whole
    assert (
        paper_export.short_command("run r/a.tsv r/b,c.tsv r/d.tsv")
        == "run r/a.tsv r/b,c.tsv r/d.tsv"
    )
    assert paper_export.short_command("run 'unbalanced") == "run 'unbalanced"


def test_a_job_run_again_within_the_run_still_counts_its_earlier_run(tmp_path):
    """A budget raised after a timeout re-runs the job and Snakemake rewrites its benchmark
    file: the ledger that each part updates keeps the earlier row, the total counts both runs
    (one job), the README names the earlier run, and the 32-core time uses the last run."""
    import paper_export

    results = tmp_path / "results"
    write_bench(results / "benchmarks" / "embed" / "big" / "pacmap.tsv", 1805.59, 1807.5)
    write_bench(results / "benchmarks" / "embed" / "big" / "pca.tsv", 9)
    assert paper_export.total_compute(results, {"big"}) == (1814.59, 2)
    ledger = (results / paper_export.LEDGER).read_bytes()
    assert paper_export.total_compute(results, {"big"}) == (1814.59, 2)  # seen once, kept once
    assert (results / paper_export.LEDGER).read_bytes() == ledger
    write_bench(results / "benchmarks" / "embed" / "big" / "pacmap.tsv", 2100.0, 2101.0)
    write_bench(results / "benchmarks" / "embed" / "ladder_n10" / "umap.tsv", 50)
    assert paper_export.total_compute(results, {"big"}) == (3914.59, 2)
    paper_export.record_sitting(results, 2, "paper_run.py run")
    readme = export_readme(results, tmp_path / "export", ["pca", "pacmap"])
    assert "total compute: 3,915 s (1.09 h) summed over 2 jobs'" in readme
    assert "by stage (seconds, jobs): embed 3,915 s (2)" in readme
    assert "1 earlier run(s) of jobs that ran again within the run" in readme
    assert (
        "within the run, whose benchmark files the later run rewrote: embed big/pacmap (1,806 s)"
        in readme
    )
    # 32 cores: the last runs only, each on one thread: the pacmap job alone, 35 min
    assert "on a 32-core node: about 35 min for the embedding jobs" in readme


def test_the_export_sets_each_measured_job_beside_its_prediction(tmp_path):
    """With the estimate's jobs, the export writes measured against predicted seconds per
    embedding job and quotes the sums and the spread of the ratios; skips and controls
    (predicted under 10 s) and jobs stopped by a budget have no ratio."""
    import pandas as pd
    import paper_export

    from tests.conftest import make_blobs
    from tests.test_embed_summary import write_embedding

    results = tmp_path / "results"
    for m, s in (("tsne", 300), ("umap", 100), ("pca", 3), ("pacmap", 600)):
        write_bench(results / "benchmarks" / "embed" / "big" / f"{m}.tsv", s)
    X, y = make_blobs(n_per=5, n_classes=2, dims=2)
    path = results / "embed" / "big" / "pacmap.h5ad"
    write_embedding(path, X, y.astype(str), "pacmap", status="timeout")
    predicted = pd.DataFrame(
        {
            "dataset": ["big"] * 5,
            "method": ["tsne", "umap", "pca", "phate", "pacmap"],
            "s_2": [200.0, 100.0, 2.0, 500.0, 300.0],
            "source": ["measured at 1,000 (proxy v4)"] * 5,
        }
    )
    out = tmp_path / "export"
    paper_export.export(results, out, command="paper_run.py export", predicted=predicted)
    readme = (out / "README.md").read_text()
    assert (
        "2 embedding jobs that ended ok, predicted at 10 s or more, took 400 s against 300 s "
        "predicted "
        "(1.33 x; per job median 1.25 x, from 1.00 to 1.50; against_prediction.md)"
    ) in readme
    table = pd.read_csv(out / "against_prediction.tsv", sep="\t")
    assert list(table["method"]) == ["tsne", "umap", "pca", "pacmap"]  # phate did not run
    assert table["ratio"].tolist()[:2] == [1.5, 1.0] and table["ratio"][2:].isna().all()
    assert table["status"].tolist() == ["ok", "ok", "ok", "timeout"]
    assert "against_prediction.md" in readme.split("- files: ")[1]


def test_the_export_draws_the_largest_data_set_alone(tmp_path):
    """The README's figure: the comparison of the largest data set's embeddings alone, drawn
    by the summary's figure command, in the selection's order."""
    import matplotlib.image
    import pandas as pd
    import paper_export

    from tests.conftest import make_blobs
    from tests.test_embed_summary import write_embedding

    results = tmp_path / "results"
    X, y = make_blobs(n_per=20, n_classes=3, dims=2)
    rows = []
    for m in ("pca", "tsne"):
        write_embedding(results / "embed" / "big" / f"{m}.h5ad", X, y.astype(str), m)
        write_embedding(results / "embed" / "small" / f"{m}.h5ad", X[:30], y[:30].astype(str), m)
        for ds in ("big", "small"):
            rows.append(
                {
                    "dataset": ds,
                    "method": m,
                    "method_label": m.upper(),
                    "s": 3.0,
                    "fit_seconds": 1.0,
                }
            )
    (results / "tables").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(results / "tables" / "timing.tsv", sep="\t", index=False)
    config = {
        "selection": {"datasets": ["big", "small"], "methods": ["pca", "tsne", "umap"]},
        "datasets": {"big": {"n_cells": 60}, "small": {"n_cells": 30}},
        "threads": {"embed": 8},
    }
    name = paper_export.largest_figure(results, tmp_path, config, "big")
    assert name == "comparison_big.png"
    height, width = matplotlib.image.imread(tmp_path / name).shape[:2]
    assert 0 < width <= 2400 and height < width  # one block of two panels, not two blocks
    # only the figure: no hidden state file of the figure job lands in the committed export
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, "results"]


def test_each_part_commits_its_finished_jobs_and_a_new_machine_adds_to_them(tmp_path, capsys):
    """progress.tsv: one row per finished embedding job of the selection (its benchmark row,
    fit, peak, status and scores), read again unchanged without a second row, a damaged file
    left out with one line; a later part on a new machine, whose results/ lacks the earlier
    jobs, adds its own rows and keeps theirs."""
    import pandas as pd
    import paper_progress

    from tests.conftest import make_blobs
    from tests.test_embed_summary import write_embedding

    X, y = make_blobs(n_per=5, n_classes=2, dims=2)
    config = {
        "selection": {"datasets": ["big"], "methods": ["pca", "tsne", "umap"]},
        "datasets": {"big": {"n_cells": 10}},
    }

    def job(results, m, s, fit, knc=None):
        write_bench(results / "benchmarks" / "embed" / "big" / f"{m}.tsv", s)
        meta = {"n_cells": 10, "fit_seconds": fit, "peak_rss_mb": 700.0, "status": "ok"}
        write_embedding(results / "embed" / "big" / f"{m}.h5ad", X, y.astype(str), m, **meta)
        if knc is not None:
            path = results / "metrics" / "big" / f"{m}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(
                {"dataset": "big", "method": m, "metric": ["knc", "cpd"], "value": [knc, 0.5]}
            ).to_csv(path, sep="\t", index=False)

    first, out = tmp_path / "first" / "results", tmp_path / "paper_run"
    job(first, "pca", 2.0, 1.5)
    job(first, "tsne", 2732.41, 2708.2, knc=0.713)
    import paper_export

    paper_export.record_sitting(first, 2, "paper_run.py run results/x", "ruff at nice 19")
    write_bench(first / "benchmarks" / "embed" / "big" / "umap.tsv", 50.0)
    (first / "embed" / "big" / "umap.h5ad").write_bytes(b"cut")  # damaged
    line = paper_progress.write_progress(first, out, config, "paper_run.py run results/x")
    assert "progress: big/umap left out: " in capsys.readouterr().out
    assert line == f"progress: 2 job rows in {out / 'progress.tsv'}"
    rows = pd.read_csv(out / "progress.tsv", sep="\t", comment="#")
    assert rows["method"].tolist() == ["pca", "tsne"]  # umap has not run
    tsne = rows.set_index("method").loc["tsne"]
    assert (tsne["s"], tsne["fit_seconds"], tsne["peak_rss_mb"]) == (2732.41, 2708.2, 700.0)
    assert (tsne["knc"], tsne["cpd"], tsne["status"]) == (0.713, 0.5, "ok")
    assert tsne["shared_with"] == "ruff at nice 19"  # what ran beside the part it finished in
    assert rows.set_index("method")["knc"].isna()["pca"]  # not scored yet
    md = (out / "progress.md").read_text()
    assert "> command: paper_run.py run results/x" in md and "| 2,732 |" in md
    assert "0.713" in md

    job(first, "pca", 2.0, 1.5, knc=0.2)  # the same job, scored since: its row is updated
    paper_progress.write_progress(first, out, config, "paper_run.py progress")
    rows = pd.read_csv(out / "progress.tsv", sep="\t", comment="#")
    assert len(rows) == 2 and rows.set_index("method").at["pca", "knc"] == 0.2

    old = out / "progress.tsv"  # a file of the first version, without shared_with
    old.write_text(old.read_text().replace("\tshared_with", "").replace("\truff at nice 19", ""))
    paper_progress.write_progress(tmp_path / "empty", out, config, "paper_run.py progress")
    assert pd.read_csv(old, sep="\t", comment="#")["shared_with"].isna().all()

    second = tmp_path / "second" / "results"
    job(second, "tsne", 2900.0, 2850.0, knc=0.712)
    job(second, "umap", 100.0, 90.0)
    paper_progress.write_progress(second, out, config, "paper_run.py run")
    rows = pd.read_csv(out / "progress.tsv", sep="\t", comment="#")
    assert list(zip(rows["method"], rows["s"], strict=True)) == [
        ("pca", 2.0),
        ("tsne", 2732.41),
        ("tsne", 2900.0),
        ("umap", 100.0),
    ]
