"""The paper run's cost predicted from the scaling ladder, before it runs
(``python benchmarks/paper_run.py estimate``): each embedding job of the paper DAG on a 2-core
node and on a 32-core one, written to ``benchmarks/results/paper_estimate.{md,tsv}``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ladder_setup import ROOT

#: The paper config and the ladder's table (benchmarks/paper_run.py reads the same).
CONFIG = "benchmarks/paper.yaml"
LADDER = "benchmarks/results/ladder.tsv"

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
