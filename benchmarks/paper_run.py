"""The paper run as a user types it: inputs, budgets, the run, and its export.

Usage (from the repository root; ``make paper`` runs ``run``)::

    python benchmarks/paper_run.py inputs               # make the stand-in inputs that are missing
    python benchmarks/paper_run.py budgets              # the budget block of benchmarks/paper.yaml
    python benchmarks/paper_run.py run [--cores 2]      # inputs, snakemake, export
    python benchmarks/paper_run.py run --n-cells 20000  # the same on a small proxy (a check)
    python benchmarks/paper_run.py run --n-cells 3000 --methods pca tsne ae_keras ae_citeseq
    python benchmarks/paper_run.py export               # copy the products to paper_run/

``inputs`` makes, under ``scratch/``, what ``benchmarks/paper.yaml`` reads when missing: the
1.3M proxy (the ladder's file, ``ladder.ensure_proxy``), its simulated antibodies
(``src/scdrbench/data/proxy_adt.py``) and the CBMC-sized CITE-seq pair. ``budgets`` derives the budget
block from the ladder's measured 1.3M jobs (``benchmarks/results/ladder.tsv``): ``MARGIN`` times
each job's CPU seconds (its time on one thread; at least its wall time) and peak memory, at least each method's own memory model, rounded up, and
never over the node (``NODE_MEM``); a test keeps paper.yaml equal to it. ``run`` resumes (jobs that
finished earlier are not run again) and ``--keep-going``: a job past its budget ends as a status
row and the tables and figures are still made. ``export`` copies the comparison figure, the metrics
heatmap, the timing, metrics and ranking tables and findings.md to
``benchmarks/results/paper_run/`` with a README naming the machine, versions, date, command and the
run's total compute (the sum of its jobs' seconds, Snakemake's ``benchmark:`` rows). A run with
``--n-cells`` works in ``scratch/paper_n{N}/`` and exports there, never to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = "benchmarks/paper.yaml"
CBMC_RNA = "scratch/cbmc_sim_rna.csv.gz"
CBMC_ADT = "scratch/cbmc_sim_adt.csv.gz"
LADDER = "benchmarks/results/ladder.tsv"
EXPORT = ROOT / "benchmarks" / "results" / "paper_run"
#: Budget = MARGIN x the ladder's measured 1.3M job (wall time, peak memory), at least the floors.
MARGIN = 1.5
MIN_TIME_MIN = 10
MIN_MEM_G = 4
#: A 2-core, 24 GiB node: what a job may hold, leaving the system and Snakemake the rest.
NODE_MEM_G = 22
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


def ensure_inputs(n_cells: int | None = None) -> dict:
    """Make the stand-in inputs that are missing; returns ``{name: path}`` of them. With
    ``n_cells`` a proxy of that many cells (and its antibodies) goes under scratch/paper_n{N}/."""
    from scdrbench.data.proxy import PROXY_VERSION, spec_for
    from scdrbench.data.proxy_adt import adt_matches, write_citeseq_pair, write_proxy_adt

    if n_cells:
        work = ROOT / "scratch" / f"paper_n{n_cells}"
        proxy, adt = work / "proxy.h5", work / "proxy_adt.h5ad"
        if not proxy.exists():
            work.mkdir(parents=True, exist_ok=True)
            cmd = [
                sys.executable,
                "-m",
                "scdrbench.data.proxy",
                str(proxy),
                "--n-cells",
                str(n_cells),
            ]
            subprocess.run(cmd, cwd=ROOT, check=True)
    else:
        from ladder_setup import PROXY, ensure_adt, ensure_proxy

        ensure_proxy()
        proxy, adt = ROOT / PROXY, ensure_adt()
    if n_cells and not adt_matches(spec := spec_for(PROXY_VERSION, n_cells=n_cells), adt):
        print(json.dumps(write_proxy_adt(spec, str(adt))))
    if not ((ROOT / CBMC_RNA).exists() and (ROOT / CBMC_ADT).exists()):
        print(json.dumps(write_citeseq_pair(str(ROOT / CBMC_RNA), str(ROOT / CBMC_ADT))))
    return {"proxy": proxy, "adt": adt, "cbmc_rna": ROOT / CBMC_RNA, "cbmc_adt": ROOT / CBMC_ADT}


def budgets(ladder: str | Path = ROOT / LADDER) -> dict:
    """The paper config's ``budget`` block, from the ladder's 1.3M jobs (see the module doc)."""
    import pandas as pd

    from scdrbench.common.config import INPUT_DIMS
    from scdrbench.methods import get_method
    from scdrbench.stages.check_config import check

    config = check([])
    lad = pd.read_csv(ladder, sep="\t", comment="#")
    top = lad[(lad["rung"] == lad["rung"].max()) & (lad["status"] == "ok")]
    top = top.drop_duplicates("method", keep="last").set_index("method")
    n = int(lad["rung"].max())
    methods = {}
    for m in config["selection"]["methods"]:
        if m not in top.index:
            continue  # not measured at 1.3M: the stage's budget (the ladder's)
        entry = config["methods"][m]
        model = get_method(entry["algorithm"]).estimate_memory_mb(
            n, config["preprocess"][INPUT_DIMS[entry["input"]]], **entry["params"]
        )
        # CPU seconds, not wall: the job as it would run on one thread (the paper's umap is
        # deterministic, pinned to one thread; the ladder ran it on two), at least its wall time
        base = max(top.at[m, "job_s"], top.at[m, "cpu_s"])
        minutes = max(MIN_TIME_MIN, 5 * math.ceil(MARGIN * base / 60 / 5))
        mem = max(MIN_MEM_G, math.ceil(max(MARGIN * top.at[m, "max_rss_mb"], model) / 1024))
        methods[m] = {"time": f"{minutes}m", "mem": f"{min(mem, NODE_MEM_G)}G"}
    return {
        "stages": {
            "embed": {"time": "100m", "mem": f"{NODE_MEM_G}G"},
            "score": {"time": "60m", "mem": "16G"},
        },
        "methods": methods,
        "over_estimate": "skip",
    }


def small_override(n_cells: int, inputs: dict, methods: list[str] | None = None) -> Path:
    """A config file over paper.yaml for a run on a small proxy (absolute paths: it runs in its
    own directory), with only ``methods`` when given."""
    import yaml

    work = ROOT / "scratch" / f"paper_n{n_cells}"
    override = {
        "datasets": {
            "mouse_brain_1m": {
                "path": str(inputs["proxy"]),
                "adt_path": str(inputs["adt"]),
                "n_cells": n_cells,
                "subsample": [max(1000, n_cells // 10)],
            },
            "cbmc": {"path": str(inputs["cbmc_rna"]), "adt_path": str(inputs["cbmc_adt"])},
        },
        "findings": {"ladder": str(ROOT / LADDER)},
    }
    if methods:
        override["selection"] = {"datasets": ["cbmc", "mouse_brain_1m"], "methods": methods}
    path = work / "override.yaml"
    path.write_text(yaml.safe_dump(override, sort_keys=False))
    return path


def run(cores: int, n_cells: int | None, methods: list[str] | None = None) -> None:
    inputs = ensure_inputs(n_cells)
    cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", str(ROOT / CONFIG)]
    work, out = ROOT, EXPORT
    if n_cells:
        work = ROOT / "scratch" / f"paper_n{n_cells}"
        cmd += [str(small_override(n_cells, inputs, methods)), "--directory", str(work)]
        out = work / "export"
    cmd += ["--cores", str(cores), "--keep-going", "--rerun-incomplete"]
    print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, check=False)
    export(work / "results", out, command=" ".join(sys.argv), returncode=proc.returncode)


def total_compute(results: Path) -> tuple[float, int]:
    """Seconds summed over every job's Snakemake benchmark row (repeats included), and jobs."""
    import pandas as pd

    seconds, jobs = 0.0, 0
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        rows = pd.read_csv(path, sep="\t")
        seconds += float(pd.to_numeric(rows["s"], errors="coerce").fillna(0).sum())
        jobs += 1
    return seconds, jobs


def export(results: Path, out: Path, *, command: str, returncode: int = 0) -> None:
    """Copy the products to ``out`` with a README of how they were made."""
    from ladder_report import machine, versions

    out.mkdir(parents=True, exist_ok=True)
    copied, missing = [], []
    for rel in PRODUCTS:
        src = results / rel
        if src.exists():
            shutil.copy2(src, out / Path(rel).name)
            copied.append(Path(rel).name)
        else:
            missing.append(rel)
    seconds, jobs = total_compute(results)
    lines = [
        "# The paper run (benchmarks/paper.yaml)",
        "",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- versions: {versions()}",
        f"- command: `{command}` (snakemake exit status {returncode})",
        f"- total compute: {seconds:,.0f} s ({seconds / 3600:.2f} h) summed over {jobs} jobs' "
        "Snakemake benchmark rows (wall seconds of each job, all stages)",
        f"- files: {', '.join(copied)}",
    ]
    if missing:
        lines.append(f"- not made: {', '.join(missing)}")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"exported {len(copied)} files to {out}; total compute {seconds:,.0f} s")


#: The big node of the estimate; config.yaml's threads per embedding job decide how many of its
#: jobs run at once.
BIG_NODE_CORES = 32
ESTIMATE = ROOT / "benchmarks" / "results" / "paper_estimate"


def paper_sets(config: dict) -> dict[str, int]:
    """The paper run's data sets and their cells: each selected data set and its subsamples."""
    sets = {}
    for ds in config["selection"]["datasets"]:
        entry = config["datasets"][ds]
        sets[ds] = int(entry["n_cells"])
        for n in entry.get("subsample") or []:
            sets[f"{ds}_n{n}"] = int(n)
    return sets


def amdahl_seconds(wall: float, cpu: float, threads_measured: int, threads: int) -> float:
    """A job's time on ``threads`` from its wall and CPU seconds on ``threads_measured``: the
    parallel share p that its measured thread use implies (Amdahl), then 1 / ((1 - p) + p / t)
    of its one-thread time (its CPU seconds)."""
    used = min(max(cpu / wall, 1.0), threads_measured) if wall > 0 else 1.0
    p = 0.0 if threads_measured <= 1 else (1 - 1 / used) / (1 - 1 / threads_measured)
    one = max(cpu, wall)
    return one * ((1 - p) + p / threads)


def lpt_makespan(seconds: list[float], slots: int) -> float:
    """Longest-processing-time-first list scheduling of independent jobs on ``slots``."""
    import heapq

    free = [0.0] * max(1, slots)
    for s in sorted(seconds, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def estimate(ladder: str | Path = ROOT / LADDER) -> tuple:
    """The paper run's cost predicted from the scaling ladder, before it runs: each embedding job
    of the paper DAG (data set x method) on this 2-core node and on a 32-core one. Returns
    ``(jobs, totals)``: a table of jobs and a dict of totals (see ``write_estimate``)."""
    import pandas as pd
    import yaml

    from scdrbench.common.budget import format_duration, job_budget
    from scdrbench.common.config import predicted_overruns
    from scdrbench.stages.check_config import check
    from scdrbench.summary.scaling import power_law

    config = check([str(ROOT / CONFIG)])
    ladder_cfg = yaml.safe_load((ROOT / "benchmarks" / "ladder.yaml").read_text())
    # the ladder ran these on both threads where config.yaml pins them to one (deterministic)
    one_thread = {
        m
        for m, e in (ladder_cfg.get("methods") or {}).items()
        if (e.get("params") or {}).get("deterministic") is False
        and config["methods"][m]["params"].get("deterministic", False)
    }
    lad = pd.read_csv(ladder, sep="\t", comment="#")
    lad = lad[lad["status"] != "not run yet"].sort_values("proxy_version", kind="stable")
    lad = lad.drop_duplicates(["method", "rung"], keep="last")
    rungs = sorted(lad["rung"].unique())
    threads = int(config["threads"]["embed"])
    sets = paper_sets(config)
    grid = {ds: {"n_cells": n} for ds, n in sets.items()}
    over = {(ds, m) for ds, m, _ in predicted_overruns(config, grid)}
    rows = []
    for ds, n in sets.items():
        rung = next((r for r in rungs if r >= n), rungs[-1])
        for m in config["selection"]["methods"]:
            own = lad[lad["method"] == m]
            budget = job_budget(config, "embed", m).time_s
            at = own[own["rung"] == rung]
            row = {"dataset": ds, "n_cells": n, "method": m, "ladder_rung": rung}
            ok = own[own["status"] == "ok"]
            if (ds, m) in over:  # the paper run records it as skipped before it starts
                zero = {"s_2": 0.0, "cpu_s": 0.0, f"s_{threads}": 0.0}
                rows.append(row | {"source": "skipped: memory model over its budget"} | zero)
                continue
            status = str(at.iloc[0]["status"]) if len(at) else ""
            if status.startswith("timeout"):
                wall = cpu = float(budget)
                row["source"] = f"stopped by its budget on the ladder at {rung:,}"
            elif status == "ok":
                r = at.iloc[0]
                wall, cpu = float(r["job_s"]), float(r["cpu_s"])
                row["source"] = f"measured at {rung:,} (proxy v{int(r['proxy_version'])})"
            elif len(ok) >= 2:
                a, b, k = power_law(ok["rung"], ok["job_s"])
                ac, bc, _ = power_law(ok["rung"], ok["cpu_s"])
                wall, cpu = a * rung**b, ac * rung**bc
                row["source"] = f"power law n^{b:.2f} of {k} rungs"
            else:  # not counted in the totals; listed
                nan = float("nan")
                rows.append(row | {"source": "not measured", "s_2": nan, "cpu_s": nan} | {
                    f"s_{threads}": nan})  # fmt: skip
                continue
            if m in one_thread:
                wall = cpu = max(wall, cpu)  # the paper's deterministic run: one thread
            # a 32-core node (budgets raised, as docs/paper-run.md says): what the job needs
            big = amdahl_seconds(wall, cpu, 1 if m in one_thread else 2, threads)
            if wall > budget:  # on this node the paper config's budget stops it
                row["source"] += f"; stopped by its budget {format_duration(budget)}"
                wall, cpu = float(budget), cpu * budget / wall
            rows.append(row | {"s_2": wall, "cpu_s": cpu, f"s_{threads}": big})
    jobs = pd.DataFrame(rows)
    slots = BIG_NODE_CORES // threads
    totals = {
        "jobs": len(jobs),
        "threads": threads,
        "slots": slots,
        "seconds_2_cores": float(jobs["s_2"].sum()),
        "cpu_seconds": float(jobs["cpu_s"].sum()),
        "makespan_32": lpt_makespan(list(jobs[f"s_{threads}"].dropna()), slots),
        "makespan_32_no_gain": lpt_makespan(list(jobs["s_2"].dropna()), slots),
        "longest": jobs.loc[jobs[f"s_{threads}"].idxmax()].to_dict() if len(jobs) else {},
    }
    unmeasured = jobs["source"] == "not measured"
    totals["unmeasured"] = sorted(jobs.loc[unmeasured, "method"].unique())
    totals["unmeasured_jobs"] = int(unmeasured.sum())
    return jobs, totals


def write_estimate(jobs, totals, out: Path = ESTIMATE) -> str:
    """``paper_estimate.{tsv,md}``: the jobs and the totals, with a header of how they were made."""
    from ladder_report import machine, versions

    from scdrbench.common.budget import format_duration

    t = totals
    longest, big = t["longest"], f"s_{t['threads']}"
    head = [
        "The paper run's cost predicted from the scaling ladder (benchmarks/paper_run.py estimate)",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {machine()} (where this was computed; the times are the ladder's rows, "
        "each measured on the machine its row names: 2-core, 24 GiB VMs)",
        f"versions: {versions()}",
        "command: python benchmarks/paper_run.py estimate",
        f"config: config.yaml + {CONFIG} (the paper's selection, data sets and budgets); "
        f"ladder: {LADDER}",
        "jobs: the paper DAG's embedding jobs (data set x method); each from the ladder's row "
        "at the rung at or above its cells (the calibrated proxy's where there is one), else "
        "the method's power law (job seconds ~ n^b over its finished rungs), else not counted; "
        "the CBMC-sized set is read at the 10k rung. Prepare, preprocess, scoring and summary "
        "jobs are not counted (minutes against hours: the ladder's 1.3M prepare and preprocess "
        "are results/benchmarks/prepare and preprocess)",
        "columns: s_2: seconds on a 2-core node (each job on both cores, one at a time; "
        "config.yaml's deterministic UMAP and densMAP on one thread), capped by the paper "
        f"config's budgets; cpu_s: CPU seconds there; s_{t['threads']}: seconds at config.yaml's "
        f"{t['threads']} threads per embedding job on a {BIG_NODE_CORES}-core node (budgets "
        "raised), from the one-thread time and the parallel share the job's measured thread "
        "use on 2 threads implies (Amdahl)",
    ]
    lines = [
        f"{t['jobs']} embedding jobs. On a 2-core node, those measured or predicted: "
        f"{t['seconds_2_cores']:,.0f} s "
        f"({format_duration(t['seconds_2_cores'])}) in all, the sum of the jobs' seconds "
        f"({t['cpu_seconds']:,.0f} CPU seconds).",
        f"On a {BIG_NODE_CORES}-core node ({t['slots']} jobs at once, {t['threads']} threads "
        f"each): about {format_duration(t['makespan_32'])} (longest-first scheduling of the "
        f"jobs on {t['slots']} slots); {format_duration(t['makespan_32_no_gain'])} if no job "
        "ran faster than on 2 threads.",
        f"The longest job: {longest.get('method')} on {longest.get('dataset')} "
        f"({format_duration(longest.get(big, 0))} "
        f"on {t['threads']} threads).",
    ]
    if t["unmeasured"]:
        lines.append(
            f"Not counted: {t['unmeasured_jobs']} jobs of methods the ladder has not measured "
            f"({', '.join(t['unmeasured'])}); on a 2-core node each may take up to its budget."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".tsv"), "w") as fh:
        fh.writelines(f"# {line}\n" for line in head + lines)
        jobs.to_csv(fh, sep="\t", index=False, float_format="%.1f")
    md = "\n".join(f"> {line}  " for line in head) + "\n\n" + "\n\n".join(lines) + "\n\n"
    md += jobs.to_markdown(index=False, floatfmt=",.0f") + "\n"
    out.with_suffix(".md").write_text(md)
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("inputs").add_argument("--n-cells", type=int)
    sub.add_parser("budgets")
    r = sub.add_parser("run")
    r.add_argument("--cores", type=int, default=2)
    r.add_argument("--n-cells", type=int, help="a small proxy instead of the 1.3M one (a check)")
    r.add_argument("--methods", nargs="+", help="with --n-cells: only these methods (a check)")
    sub.add_parser("export")
    sub.add_parser("estimate", help="the run's cost on 2 and 32 cores, from the ladder")
    a = p.parse_args(argv)
    if a.command == "inputs":
        print({k: str(v) for k, v in ensure_inputs(a.n_cells).items()})
    elif a.command == "budgets":
        import yaml

        print(yaml.safe_dump({"budget": budgets()}, sort_keys=False))
    elif a.command == "run":
        if a.methods and not a.n_cells:
            p.error("--methods only with --n-cells: the paper run is the whole selection")
        run(a.cores, a.n_cells, a.methods)
    elif a.command == "estimate":
        print(write_estimate(*estimate()))
    else:
        export(ROOT / "results", EXPORT, command=" ".join(sys.argv))


if __name__ == "__main__":
    main()
