"""The paper run's export (``python benchmarks/paper_run.py export``; ``run`` ends with it):
the products of ``results/`` copied to ``benchmarks/results/paper_run/`` with a README of how
they were made, the run's total compute from its jobs' Snakemake ``benchmark:`` rows, and what
its embedding jobs would need on a big node. A run spanning sittings records each part
(``record_sitting``), so the README names every machine it ran on.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from paper_estimate import BIG_NODE_CORES, ROOT, amdahl_seconds, lpt_makespan, paper_sets

#: One row per `run` (when, which machine, cores, command), under the run's results/.
SITTINGS = "paper_run_sittings.tsv"
#: The products copied to the export: (results path, name in the export).
PRODUCTS = [
    "figures/comparison.png",
    "figures/comparison.pdf",
    "figures/metrics_heatmap.png",
    "figures/metrics_heatmap.pdf",
    "tables/timing.tsv",
    "tables/timing.md",
    "tables/metrics.tsv",
    "tables/metrics.md",
    "tables/ranking.tsv",
    "tables/ranking.md",
    "tables/findings.md",
]


def record_sitting(results: Path, cores: int, command: str) -> None:
    """One row per ``run`` in ``results/paper_run_sittings.tsv``: a run that spans sittings may
    span machines, and its export names each (when, where, on how many cores, what)."""
    from scdrbench.common.provenance import machine

    results.mkdir(parents=True, exist_ok=True)
    path = results / SITTINGS
    head = "" if path.exists() else "started_utc\tmachine\tcores\tcommand\n"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    with path.open("a") as fh:
        fh.write(f"{head}{now}\t{machine()}\t{cores}\t{command}\n")


def job_rows(results: Path, datasets=None):
    """Every job's Snakemake benchmark row under ``results/benchmarks`` (repeats included):
    stage, data set, name, wall and CPU seconds. With ``datasets`` only the jobs of those data
    sets, and the summary's: a results/ shared with the scaling ladder holds its jobs too."""
    import pandas as pd

    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = path.relative_to(results / "benchmarks").with_suffix("")
        stage, rest = rel.parts[0], rel.parts[1:]
        ds = rest[0] if stage != "summary" and rest else None
        if datasets is not None and ds is not None and ds not in datasets:
            continue
        bench = pd.read_csv(path, sep="\t")
        for r in bench.itertuples():
            s = pd.to_numeric(getattr(r, "s", None), errors="coerce")
            cpu = pd.to_numeric(getattr(r, "cpu_time", None), errors="coerce")
            rows.append(
                {
                    "stage": stage,
                    "dataset": ds,
                    "name": "/".join(rest),
                    "s": 0.0 if pd.isna(s) else float(s),
                    "cpu_s": float("nan") if pd.isna(cpu) else float(cpu),
                }
            )
    return pd.DataFrame(rows, columns=["stage", "dataset", "name", "s", "cpu_s"])


def totals(rows) -> tuple[float, int]:
    """Seconds summed over ``job_rows`` (repeats included), and the number of jobs."""
    return float(rows["s"].sum()), int(rows[["stage", "name"]].drop_duplicates().shape[0])


def total_compute(results: Path, datasets=None) -> tuple[float, int]:
    """Seconds summed over every job's Snakemake benchmark row (repeats included), and jobs."""
    return totals(job_rows(results, datasets))


def big_node_minutes(rows, threads_run: int, threads: int = 8, cores: int = BIG_NODE_CORES):
    """Minutes the run's embedding jobs need on a ``cores``-core node at ``threads`` per job:
    each job's time there from the parallel share its CPU use on ``threads_run`` implies
    (Amdahl, as the estimate), the jobs scheduled longest first on ``cores // threads`` slots."""
    emb = rows[rows["stage"] == "embed"]
    cpu = emb["cpu_s"].fillna(emb["s"])  # a row without CPU seconds: its wall time
    secs = [amdahl_seconds(w, c, threads_run, threads) for w, c in zip(emb["s"], cpu, strict=True)]
    return lpt_makespan(secs, cores // threads) / 60


def export(
    results: Path, out: Path, *, command: str, returncode: int = 0, config: dict | None = None
) -> None:
    """Copy the products to ``out`` with a README of how they were made: the machine(s), the
    versions, the command, the run's total compute by stage (its data sets' jobs only) and what
    its embedding jobs would need on a 32-core node; with ``config``, the comparison of the
    largest data set alone (``comparison_<data set>.png``, the figure the README shows)."""
    import pandas as pd

    from scdrbench.common.provenance import machine, versions

    out.mkdir(parents=True, exist_ok=True)
    copied, missing = [], []
    for rel in PRODUCTS:
        src = results / rel
        if src.exists():
            shutil.copy2(src, out / Path(rel).name)
            copied.append(Path(rel).name)
        else:
            missing.append(rel)
    sets = paper_sets(config) if config else None
    if config:
        largest = max(sets, key=sets.get)
        name = largest_figure(results, out, config, largest)
        (copied if name else missing).append(name or f"comparison_{largest}.png")
    rows = job_rows(results, sets)
    seconds, jobs = totals(rows)
    stages = rows.groupby("stage", sort=False)["s"].agg(["sum", "count"])
    by_stage = ", ".join(
        f"{st} {v['sum']:,.0f} s ({v['count']:.0f})" for st, v in stages.iterrows()
    )
    sittings = results / SITTINGS
    ran = pd.read_csv(sittings, sep="\t") if sittings.exists() else None
    lines = [
        "# The paper run (benchmarks/paper.yaml)",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- versions: {versions()}",
        f"- command: `{command}` (snakemake exit status {returncode})",
        f"- total compute: {seconds:,.0f} s ({seconds / 3600:.2f} h) summed over {jobs} jobs' "
        "Snakemake benchmark rows (wall seconds of each job, all stages)",
        f"- by stage (seconds, jobs): {by_stage}",
    ]
    if ran is not None and len(ran):
        cores = int(ran["cores"].max())
        threads = int(config["threads"]["embed"]) if config else 8
        big = big_node_minutes(rows, min(cores, threads), threads)
        lines.append(
            f"- on a {BIG_NODE_CORES}-core node: about {big:,.0f} min for the embedding jobs "
            f"({BIG_NODE_CORES // threads} at once, {threads} threads each; each job's time from "
            f"the parallel share its CPU use on {min(cores, threads)} threads implies, longest "
            "first), the other stages' jobs besides"
        )
        parts = "; ".join(
            f"{r.started_utc} UTC on {r.machine} ({r.cores} cores): `{r.command}`"
            for r in ran.itertuples()
        )
        lines.append(f"- ran in {len(ran)} part(s): {parts}")
    lines.append(f"- files: {', '.join(copied)}")
    if missing:
        lines.append(f"- not made: {', '.join(missing)}")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"exported {len(copied)} files to {out}; total compute {seconds:,.0f} s")


def largest_figure(results: Path, out: Path, config: dict, dataset: str) -> str | None:
    """The comparison of one data set alone (the summary's own figure command, on its
    embeddings in the selection's order), as ``comparison_<data set>.png``; None when the run
    has no embedding or table for it."""
    embeddings = [results / "embed" / dataset / f"{m}.h5ad" for m in config["selection"]["methods"]]
    embeddings = [str(e) for e in embeddings if e.exists()]
    timing, metrics = results / "tables" / "timing.tsv", results / "tables" / "metrics.tsv"
    if not embeddings or not timing.exists():
        return None
    name = f"comparison_{dataset}.png"
    cmd = [
        sys.executable,
        "-m",
        "scdrbench.summary",
        "figure",
        "--embeddings",
        *embeddings,
        "--timing",
        str(timing),
        "--outputs",
        str(out / name),
    ]
    if metrics.exists():
        cmd += ["--metrics", str(metrics)]
    return name if subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0 else None
