"""The paper run's export (``python benchmarks/paper_run.py export``; ``run`` ends with it):
the products of ``results/`` copied to ``benchmarks/results/paper_run/`` with a README of how
they were made, the run's total compute from its jobs' Snakemake ``benchmark:`` rows, and what
its embedding jobs would need on a big node. A run spanning sittings records each part
(``record_sitting``: when, where, what ran beside it), so the README names every machine it ran
on; and each part keeps the benchmark rows it saw (``update_ledger``), so a job re-run within the
run (a budget raised after a timeout) still counts its earlier run in the total compute.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from paper_estimate import BIG_NODE_CORES, ROOT, amdahl_seconds, lpt_makespan, paper_sets

#: One row per `run` (when, which machine, cores, command, what shared the machine), under the
#: run's results/.
SITTINGS = "paper_run_sittings.tsv"
SITTING_COLUMNS = ["started_utc", "machine", "cores", "command", "shared_with"]
#: Every benchmark row a part of the run saw, under the run's results/: Snakemake rewrites a
#: job's benchmark file when the job runs again, and the earlier run's seconds stay here.
LEDGER = "paper_run_jobs.tsv"
JOB_COLUMNS = ["stage", "dataset", "name", "s", "cpu_s", "row"]
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


def record_sitting(results: Path, cores: int, command: str, shared_with: str = "") -> None:
    """One row per ``run`` in ``results/paper_run_sittings.tsv``: a run that spans sittings may
    span machines, and its export names each (when, where, on how many cores, what, and what
    else ran on the machine meanwhile: ``shared_with``, "not declared" when not given). A file
    of an earlier version, without the shared_with column, gets it ("not recorded")."""
    import pandas as pd

    from scdrbench.common.provenance import machine

    results.mkdir(parents=True, exist_ok=True)
    path = results / SITTINGS
    if path.exists():
        ran = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if "shared_with" not in ran.columns:
            ran["shared_with"] = "not recorded"
            write_tsv(ran[SITTING_COLUMNS], path)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    row = [now, machine(), str(cores), command, shared_with.strip() or "not declared"]
    head = "" if path.exists() else "\t".join(SITTING_COLUMNS) + "\n"
    with path.open("a") as fh:
        fh.write(head + "\t".join(" ".join(v.split()) for v in row) + "\n")


def write_tsv(frame, path: Path) -> None:
    """``frame`` to ``path`` through a temporary file beside it: never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)


def job_rows(results: Path, datasets=None):
    """Every job's Snakemake benchmark row under ``results/benchmarks`` (repeats included):
    stage, data set, name, wall and CPU seconds, and the row's own text (what tells two runs
    of a job apart). With ``datasets`` only the jobs of those data sets, and the summary's: a
    results/ shared with the scaling ladder holds its jobs too."""
    import pandas as pd

    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = path.relative_to(results / "benchmarks").with_suffix("")
        stage, rest = rel.parts[0], rel.parts[1:]
        ds = rest[0] if stage != "summary" and rest else None
        if datasets is not None and ds is not None and ds not in datasets:
            continue
        bench = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        for r in bench.to_dict("records"):
            s = pd.to_numeric(r.get("s"), errors="coerce")
            cpu = pd.to_numeric(r.get("cpu_time"), errors="coerce")
            rows.append(
                {
                    "stage": stage,
                    "dataset": ds,
                    "name": "/".join(rest),
                    "s": 0.0 if pd.isna(s) else float(s),
                    "cpu_s": float("nan") if pd.isna(cpu) else float(cpu),
                    "row": " ".join(r.values()),
                }
            )
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def update_ledger(results: Path, now=None):
    """Add the benchmark rows under ``results/`` (``now``: its ``job_rows``, when read already)
    that ``results/paper_run_jobs.tsv`` lacks, and return the whole ledger: every run of every
    job any part of the run saw, also those whose benchmark file a later run rewrote."""
    import pandas as pd

    path = results / LEDGER
    now = job_rows(results) if now is None else now
    if path.exists():
        seen = pd.read_csv(path, sep="\t", dtype={"dataset": str, "row": str})
        seen = seen.astype({"s": float, "cpu_s": float})
        keys = set(zip(seen["stage"], seen["name"], seen["row"], strict=True))
        new = [k not in keys for k in zip(now["stage"], now["name"], now["row"], strict=True)]
        now = pd.concat([seen, now.loc[new]], ignore_index=True) if any(new) else seen
    if len(now) or path.exists():
        results.mkdir(parents=True, exist_ok=True)
        write_tsv(now[JOB_COLUMNS], path)
    return now[JOB_COLUMNS]


def run_rows(results: Path, datasets=None):
    """The run's job rows with every earlier run of a re-run job (the ledger), of ``datasets``
    (and the summary's) when given. The summary's jobs count their last run only: a results/
    shared with the scaling ladder had the ladder's summary before the run's own."""
    current = job_rows(results)
    rows = update_ledger(results, current)
    last = set(zip(current["stage"], current["name"], current["row"], strict=True))
    keys = zip(rows["stage"], rows["name"], rows["row"], strict=True)
    rows = rows.loc[[st != "summary" or (st, n, r) in last for st, n, r in keys]]
    if datasets is not None:
        keep = rows["dataset"].isna() | rows["dataset"].isin(set(datasets))
        rows = rows[keep | (rows["stage"] == "summary")]
    return rows.reset_index(drop=True)


def totals(rows) -> tuple[float, int]:
    """Seconds summed over job rows (repeats and re-runs included), and the number of jobs."""
    return float(rows["s"].sum()), int(rows[["stage", "name"]].drop_duplicates().shape[0])


def total_compute(results: Path, datasets=None) -> tuple[float, int]:
    """Seconds summed over every job's Snakemake benchmark rows (repeats and the earlier runs of
    re-run jobs included), and the number of jobs."""
    return totals(run_rows(results, datasets))


def big_node_minutes(rows, threads_run: int, threads: int = 8, cores: int = BIG_NODE_CORES):
    """Minutes the run's embedding jobs need on a ``cores``-core node at ``threads`` per job:
    each job's time there from the parallel share its CPU use on ``threads_run`` implies
    (Amdahl, as the estimate), the jobs scheduled longest first on ``cores // threads`` slots."""
    emb = rows[rows["stage"] == "embed"]
    cpu = emb["cpu_s"].fillna(emb["s"])  # a row without CPU seconds: its wall time
    secs = [amdahl_seconds(w, c, threads_run, threads) for w, c in zip(emb["s"], cpu, strict=True)]
    return lpt_makespan(secs, cores // threads) / 60


def against_prediction(current, predicted, results: Path | None = None):
    """Each embedding job's measured seconds (its last run) beside those the estimate predicted
    before the run (``paper_estimate.estimate``: the ladder's rows), with the job's status (from
    its embedding file under ``results``); ratio = measured / predicted where the job ended ok
    and the prediction is at least 10 s (a skip, a timeout or a control is not a speed)."""
    import pandas as pd

    from scdrbench.common.embedding_file import read_status

    emb = current[current["stage"] == "embed"].groupby("name", sort=False)["s"].mean()
    pred = predicted.assign(name=predicted["dataset"] + "/" + predicted["method"])
    pred = pred[pred["name"].isin(emb.index)]
    table = pd.DataFrame(
        {
            "dataset": pred["dataset"].to_numpy(),
            "method": pred["method"].to_numpy(),
            "predicted_s": pred["s_2"].to_numpy(dtype=float),
            "measured_s": emb.loc[pred["name"]].to_numpy(dtype=float),
            "source": pred["source"].to_numpy(),
        }
    )
    status = []
    for ds, m in zip(table["dataset"], table["method"], strict=True):
        found = read_status(results / "embed" / ds / f"{m}.h5ad") if results else None
        status.append(found["status"] if found else "ok")
    table["status"] = status
    timed = (table["predicted_s"] >= 10) & (table["status"] == "ok")
    table["ratio"] = (table["measured_s"] / table["predicted_s"]).where(timed)
    return table


def export(
    results: Path,
    out: Path,
    *,
    command: str,
    returncode: int = 0,
    config: dict | None = None,
    predicted=None,
) -> None:
    """Copy the products to ``out`` with a README of how they were made: the machine(s), the
    versions, the command, the run's total compute by stage (its data sets' jobs only, the
    earlier runs of re-run jobs included) and what its embedding jobs would need on a 32-core
    node; with ``config``, the comparison of the largest data set alone
    (``comparison_<data set>.png``, the figure the README shows); with ``predicted`` (the
    estimate's jobs), each embedding job's measured seconds against its prediction
    (``against_prediction.{tsv,md}``)."""
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
    rows, current = run_rows(results, sets), job_rows(results, sets)
    seconds, jobs = totals(rows)
    by_stage = ", ".join(
        f"{st} {g['s'].sum():,.0f} s ({g['name'].nunique()})"
        for st, g in rows.groupby("stage", sort=False)
    )
    now = set(zip(current["stage"], current["name"], current["row"], strict=True))
    keys = zip(rows["stage"], rows["name"], rows["row"], strict=True)
    earlier = rows.loc[[k not in now for k in keys]]
    sittings = results / SITTINGS
    ran = pd.read_csv(sittings, sep="\t", keep_default_na=False) if sittings.exists() else None
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
    if len(earlier):
        again = ", ".join(
            f"{st} {n} ({v:,.0f} s)"
            for st, n, v in zip(earlier["stage"], earlier["name"], earlier["s"], strict=True)
        )
        lines.append(
            f"- counted in the total: {len(earlier)} earlier run(s) of jobs that ran again "
            f"within the run, whose benchmark files the later run rewrote: {again}"
        )
    if predicted is not None:
        table = against_prediction(current, predicted, results)
        timed = table.dropna(subset=["ratio"])
        if len(timed):
            table.to_csv(out / "against_prediction.tsv", sep="\t", index=False)
            (out / "against_prediction.md").write_text(
                table.to_markdown(index=False, floatfmt=",.2f", missingval="") + "\n"
            )
            copied.append("against_prediction.md")
            m, p = timed["measured_s"].sum(), timed["predicted_s"].sum()
            lines.append(
                f"- against the prediction made before the run (paper_estimate.md, from the "
                f"ladder's rows): {len(timed)} embedding jobs that ended ok, predicted at 10 s or "
                f"more, took "
                f"{m:,.0f} s against {p:,.0f} s predicted ({m / p:.2f} x; per job median "
                f"{timed['ratio'].median():.2f} x, from {timed['ratio'].min():.2f} to "
                f"{timed['ratio'].max():.2f}; against_prediction.md)"
            )
    if ran is not None and len(ran):
        cores = int(ran["cores"].max())
        threads = int(config["threads"]["embed"]) if config else 8
        big = big_node_minutes(current, min(cores, threads), threads)
        lines.append(
            f"- on a {BIG_NODE_CORES}-core node: about {big:,.0f} min for the embedding jobs "
            f"({BIG_NODE_CORES // threads} at once, {threads} threads each; each job's time from "
            f"the parallel share its CPU use on {min(cores, threads)} threads implies, longest "
            "first), the other stages' jobs besides"
        )
        lines.append(f"- ran in {len(ran)} part(s):")
        lines += [
            f"  - {r.started_utc} UTC on {r.machine} ({r.cores} cores): `{short_command(r.command)}`"
            + (f", beside it: {r.shared_with}" if getattr(r, "shared_with", "") else "")
            for r in ran.itertuples()
        ]
    lines.append(f"- files: {', '.join(copied)}")
    if missing:
        lines.append(f"- not made: {', '.join(missing)}")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"exported {len(copied)} files to {out}; total compute {seconds:,.0f} s")


def short_command(command: str) -> str:
    """``command`` with each run of targets in one folder and of one suffix written once, in
    the shell's brace form: ``results/metrics/cbmc/{pca,tsne}.tsv`` for a part's 18 targets."""
    import itertools
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:  # not shell-quoted (a hand-edited row): as written
        return command

    def folder_suffix(w: str):
        """A path of shell-safe characters and no comma can join a brace group: its group."""
        path = Path(w)
        plain = "/" in w and path.suffix and shlex.quote(w) == w and "," not in w
        return (str(path.parent), path.suffix) if plain and not w.startswith("-") else None

    out = []
    for key, run in itertools.groupby(words, folder_suffix):
        run = list(run)
        if key is None:
            out += [shlex.quote(w) for w in run]
            continue
        stems = [Path(w).stem for w in run]
        names = stems[0] if len(stems) == 1 else "{" + ",".join(stems) + "}"
        out.append(f"{key[0]}/{names}{key[1]}")
    return " ".join(out)


def largest_figure(results: Path, out: Path, config: dict, dataset: str) -> str | None:
    """The comparison of one data set alone (the summary's own figure command, on its
    embeddings in the selection's order), as ``comparison_<data set>.png``; None when the run
    has no embedding or table for it."""
    from scdrbench.common.keep import state_path

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
    drawn = subprocess.run(cmd, cwd=ROOT, check=False).returncode == 0
    # the figure command keeps a job's state beside its output (scdrbench.common.keep): an
    # internal of a run's results/, not a product of the export
    state_path(out / name).unlink(missing_ok=True)
    return name if drawn else None
