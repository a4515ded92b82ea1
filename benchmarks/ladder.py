"""The scaling ladder: every method on the 1.3M-cell proxy at 10k ... 1.3M cells, measured.

Usage (from the repository root; ``make ladder`` runs ``run`` then ``table``)::

    python benchmarks/ladder.py run                      # every rung, smallest first
    python benchmarks/ladder.py run --rungs 10000 30000  # some rungs
    python benchmarks/ladder.py run --rungs 1306127 --methods ae_keras ae_tf
    python benchmarks/ladder.py table                    # export what has finished so far
    python benchmarks/ladder.py summary                  # time the summary stage at 1.3M

``run`` makes the proxy (``src/scdrbench/data/proxy.py``, into ``scratch/``) if it is missing, its
checksum differs from ``benchmarks/results/proxy_1m.json`` or that record is of an earlier
version of the generator, then runs Snakemake with
``benchmarks/ladder.yaml`` rung by rung (``--keep-going``; a rung's jobs that finished in an
earlier sitting are not run again, also on a machine whose ``results/`` lacks them when the
committed table holds their row for the current proxy version: ``--again`` measures those
again), and exports the table after each rung, so that a sitting
that ends mid-run loses nothing. The lock such a sitting leaves behind is removed when no Snakemake
works in the directory any more. A method is not run at a rung where its budget already stopped
it at a smaller one, its memory model puts it over its budget, or its power law predicts far more
than its time budget (``ladder_skips``). ``table`` (``ladder_report.py``) writes the table, the
fitted power laws and the scaling figure, keeping what earlier sittings measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess

import ladder_report
import ladder_setup as L
import ladder_views
from ladder_setup import (
    CONFIG,
    ROOT,
    SHARED_WITH_DEFAULT,
    ensure_adt,
    ensure_proxy,
    ladder_config,
    rung_ids,
    unlock_if_stale,
)

#: A method is not run at a rung when its power law, fitted to its finished rungs, predicts a fit
#: time above this many times its time budget (it would only be stopped by the budget).
PREDICTED_OVER = 2.0


def ladder_skips(config: dict, size: int, methods: list[str]) -> dict[str, str]:
    """Methods not worth running at rung ``size``: stopped by their budget (timeout, out of
    memory) at a smaller rung, over their memory budget by their memory model (the workflow's
    own check, ``predicted_overruns``), or predicted by their fitted power law to run far past
    their time budget; the first reason that holds is given."""
    import numpy as np

    from scdrbench.common.budget import format_duration, job_budget
    from scdrbench.common.config import predicted_overruns
    from scdrbench.summary.scaling import power_law

    timing = ladder_report.merged_timing(config)
    skips = {}
    for m in methods:
        sub = timing[(timing["method"] == m) & (timing["n_cells"] < size)] if len(timing) else None
        stopped = None if sub is None else sub[sub["status"].isin(["timeout", "out_of_memory"])]
        if stopped is not None and len(stopped):
            first = stopped.sort_values("n_cells").iloc[0]
            skips[m] = f"not run: {first['status_message']} at {int(first['n_cells']):,} cells"
            continue
        one = dict(config, selection=dict(config["selection"], methods=[m]))
        if over := predicted_overruns(one, {"rung": {"n_cells": size}}):
            skips[m] = f"not run: {over[0][2]}".replace(" on rung", "")
            continue
        if sub is None:
            continue  # nothing measured yet: no power law
        done = sub[sub["status"] == "ok"]
        a, b, k = power_law(done["n_cells"], done["fit_seconds"])
        budget = job_budget(config, "embed", m).time_s
        if budget and np.isfinite(b) and a * size**b > PREDICTED_OVER * budget:
            skips[m] = (
                f"not run: predicted fit {format_duration(a * size**b)} (n^{b:.2f} from {k} "
                f"rungs), over {PREDICTED_OVER:g} x its budget {format_duration(budget)}"
            )
    return skips


def measured_before(ds: str, methods: list[str], recorded=None) -> dict[str, str]:
    """Methods whose job at rung ``ds`` the committed table already holds for the current proxy
    version (finished, or stopped by its budget) while this machine's ``results/`` lacks it (a
    fresh machine, a wiped ``results/``): measuring them again would cost the rung's hours for
    numbers on record. An ``error`` row is not counted: it is run again."""
    recorded = ladder_report.recorded_rows() if recorded is None else recorded
    if recorded.empty:
        return {}
    version = ladder_report.current_proxy_version()
    mine = recorded[
        (recorded["dataset"] == ds)
        & (recorded["proxy_version"] == version)
        & recorded["status_code"].isin(["ok", "timeout", "out_of_memory"])
    ]
    return {
        m: f"measured in an earlier sitting (benchmarks/results/ladder.tsv, proxy version "
        f"{version}): {mine.loc[mine['method'] == m, 'status'].iloc[0]}"
        for m in methods
        if m in set(mine["method"]) and not (ROOT / f"results/metrics/{ds}/{m}.tsv").exists()
    }


def run(
    rungs: list[int] | None,
    methods: list[str] | None,
    cores: int,
    shared_with: str,
    again: bool = False,
):
    config = ladder_config()
    ensure_proxy()
    ensure_adt()
    unlock_if_stale()
    ids = rung_ids(config)
    methods = methods or config["selection"]["methods"]
    recorded = json.loads(L.SKIPS.read_text()) if L.SKIPS.exists() else {}
    for size, ds in ids.items():
        if rungs and size not in rungs:
            continue
        skips = ladder_skips(config, size, methods)
        for m, why in skips.items():
            print(f"{ds}/{m}: {why}")
            recorded[f"{ds}/{m}"] = why
        L.SKIPS.parent.mkdir(parents=True, exist_ok=True)
        L.SKIPS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        before = {} if again else measured_before(ds, methods)
        if before:  # one line for them all: a rung can have twenty
            why = next(iter(before.values())).split(": ")[0]
            print(f"{ds}: {len(before)} jobs {why}: {', '.join(before)}; --again measures them")
        targets = [f"results/metrics/{ds}/{m}.tsv" for m in methods if m not in {**skips, **before}]
        if not targets:
            continue
        cmd = ["snakemake", "--configfile", CONFIG, "--cores", str(cores), "--keep-going"]
        # Resume, never redo: a rung measured in an earlier sitting stays measured when the code
        # around it changed (a new default parameter of a method, say). Re-measure on purpose
        # with --forcerun; a bigger budget for a stopped job: --forcerun that job's file.
        cmd += ["--rerun-triggers", "mtime", "input", "--rerun-incomplete", *targets]
        print(f"\n== rung {size:,} cells ({ds}): {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=False)
        ladder_report.table(shared_with)


def summary(shared_with: str, cores: int) -> None:
    """The summary stage (tables, comparison figure, panels...) on the 1.3M rung with every
    method that has a 1.3M result (a number or a status), each summary job timed by Snakemake's
    ``benchmark:``; written to ``benchmarks/results/ladder_summary.{tsv,md}``."""
    import tempfile

    import pandas as pd
    import yaml

    config = ladder_config()
    full = max(rung_ids(config))
    ds = rung_ids(config)[full]
    methods = [
        m
        for m in config["selection"]["methods"]
        if (ROOT / f"results/metrics/{ds}/{m}.tsv").exists()
    ]
    overlay = {
        "selection": {"datasets": [ds], "methods": methods},
        "datasets": {ds: {"subsample": []}},
    }
    rules = ["timing_table", "metrics_table", "comparison_figure", "scaling_figure"]
    rules += ["ranking_table", "metrics_heatmap", "embedding_panels", "findings"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=ROOT / "results") as fh:
        yaml.safe_dump(overlay, fh)
        fh.flush()
        cmd = ["snakemake", "summary", "--configfile", CONFIG, fh.name, "--cores", str(cores)]
        # the ladder's own run may hold the lock; the summary touches none of its files
        cmd += ["--rerun-triggers", "mtime", "input", "--nolock", "--forcerun", *rules]
        print(" ".join(cmd), flush=True)
        started = dt.datetime.now(dt.UTC)
        subprocess.run(cmd, cwd=ROOT, check=True)
        wall = (dt.datetime.now(dt.UTC) - started).total_seconds()
    rows = []
    for b in sorted((ROOT / "results/benchmarks/summary").glob("*.tsv")):
        r = pd.read_csv(b, sep="\t").iloc[0]
        rows.append({"job": b.stem, "s": r["s"], "max_rss_mb": r["max_rss"]})
    df = pd.DataFrame(rows)
    head = ladder_report.header(json.loads((ROOT / L.RECORD).read_text()), shared_with)
    head[0] = "The summary stage on the 1.3M-cell proxy (benchmarks/ladder.py summary)"
    head[5] = "command: python benchmarks/ladder.py summary"
    head[7] = "columns: job: the summary rule; s and max_rss_mb: Snakemake's benchmark of the job"
    head.append(
        f"{len(methods)} methods with a 1.3M result: {', '.join(methods)}; up to {cores} "
        f"summary jobs at once (1 thread each); the whole stage took {wall:.0f} s "
        f"including Snakemake's start; the largest job peaked at {df['max_rss_mb'].max():.0f} MB"
    )
    with open(L.RESULTS / "ladder_summary.tsv", "w") as out:
        out.writelines(f"# {line}\n" for line in head)
        df.to_csv(out, sep="\t", index=False)
    md = "\n".join(f"> {line}  " for line in head) + "\n\n"
    (L.RESULTS / "ladder_summary.md").write_text(md + df.to_markdown(index=False) + "\n")
    print(df.to_string(index=False))
    print(head[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--rungs", nargs="+", type=int, help="n_cells of the rungs (default: all)")
    r.add_argument("--methods", nargs="+", help="method ids (default: the ladder's selection)")
    r.add_argument("--cores", type=int, default=2)
    r.add_argument(
        "--again",
        action="store_true",
        help="measure again the jobs the committed table holds but results/ lacks",
    )
    sm = sub.add_parser("summary", help="time the summary stage on the 1.3M rung")
    sm.add_argument("--cores", type=int, default=2)
    sub.add_parser("readme", help="rewrite the README's headline table from ladder.tsv")
    for sp_ in (r, sub.add_parser("table"), sm):
        sp_.add_argument("--shared-with", default=SHARED_WITH_DEFAULT)
    a = p.parse_args(argv)
    if a.command == "run":
        run(a.rungs, a.methods, a.cores, a.shared_with, again=a.again)
    elif a.command == "summary":
        summary(a.shared_with, a.cores)
    elif a.command == "readme":
        ladder_views.readme()
    else:
        ladder_report.table(a.shared_with)


if __name__ == "__main__":
    main()
