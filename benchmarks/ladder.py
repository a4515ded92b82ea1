"""The scaling ladder: every method on the 1.3M-cell proxy at 10k ... 1.3M cells, measured.

Longer than 400 lines for now: the run, table and summary commands share the config, the rung
ids, the skip rules and the table's header; the table and figure export is the part to move
out (``ladder_report.py``) when it next grows.

Usage (from the repository root; ``make ladder`` runs ``run`` then ``table``)::

    python benchmarks/ladder.py run                      # every rung, smallest first
    python benchmarks/ladder.py run --rungs 10000 30000  # some rungs
    python benchmarks/ladder.py run --rungs 1306127 --methods ae_keras ae_tf
    python benchmarks/ladder.py table                    # export what has finished so far
    python benchmarks/ladder.py summary                  # time the summary stage at 1.3M

``run`` makes the proxy (``scripts/data/proxy.py``, into ``scratch/``) if it is missing or its
checksum differs from ``benchmarks/results/proxy_1m.json``, then runs Snakemake with
``benchmarks/ladder.yaml`` rung by rung (``--keep-going``; a rung's jobs that finished in an
earlier sitting are not run again), and exports the table after each rung, so that a sitting
that ends mid-run loses nothing. The lock such a sitting leaves behind is removed when no Snakemake
works in the directory any more. ``table`` writes ``benchmarks/results/ladder.{tsv,md}`` (every
method at every rung: its numbers, or its status) and ``ladder_scaling.{png,pdf}`` (log-log time
and memory against cells, a fitted power law per method, extrapolated to 1.3M where a method did
not get there). The numbers come from the workflow's own files: Snakemake's ``benchmark:`` rows
(whole-job seconds, max RSS) and the embedding files (fit seconds, fit CPU seconds, kernel peak,
status). A rung x method that this machine's ``results/`` lacks keeps its row of the committed
table: a new machine (``results/`` is not kept between sittings) adds to the table, never
shrinks it, and its skips and power laws see every rung measured so far.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = "benchmarks/ladder.yaml"
DATASET = "proxy_1m"
PROXY = "scratch/proxy_1m.h5"
LABELS = "scratch/proxy_1m_labels.csv"
RECORD = "benchmarks/results/proxy_1m.json"
RESULTS = ROOT / "benchmarks" / "results"
#: What else ran on the machine while the ladder ran (written into the table's header).
SHARED_WITH_DEFAULT = "nothing else"


def ladder_config() -> dict:
    """The validated ladder config (config.yaml extended by benchmarks/ladder.yaml, merged as
    Snakemake merges a --configfile: ``scripts.check_config.check``)."""
    from scripts.check_config import check

    return check([str(ROOT / CONFIG)])


def rung_ids(config: dict) -> dict[int, str]:
    """``{n_cells: dataset id}`` of every rung, smallest first."""
    entry = config["datasets"][DATASET]
    rungs = {size: f"{DATASET}_n{size}" for size in entry["subsample"]}
    rungs[entry["n_cells"]] = DATASET
    return dict(sorted(rungs.items()))


def ensure_proxy() -> dict:
    """Generate the proxy unless the file is there with the recorded checksum."""
    from scripts.data.proxy import sha256sum

    record = json.loads((ROOT / RECORD).read_text()) if (ROOT / RECORD).exists() else None
    path = ROOT / PROXY
    if record and path.exists() and (ROOT / LABELS).exists():
        if path.stat().st_size == record.get("size") and sha256sum(str(path)) == record["sha256"]:
            print(f"proxy {PROXY}: present, sha256 matches {RECORD}")
            return record
        print(f"proxy {PROXY}: checksum differs from {RECORD}; generating it again")
    cmd = [sys.executable, "-m", "scripts.data.proxy", PROXY, "--labels", LABELS]
    cmd += ["--record", RECORD]
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads((ROOT / RECORD).read_text())


SKIPS = RESULTS / "ladder_skips.json"
#: A method is not run at a rung when its power law, fitted to its finished rungs, predicts a fit
#: time above this many times its time budget (it would only be stopped by the budget).
PREDICTED_OVER = 2.0


def ladder_skips(config: dict, size: int, methods: list[str]) -> dict[str, str]:
    """Methods not worth running at rung ``size``: stopped by their budget (timeout, out of
    memory) at a smaller rung, over their memory budget by their memory model (the workflow's
    own check, ``predicted_overruns``), or predicted by their fitted power law to run far past
    their time budget; the first reason that holds is given."""
    import numpy as np

    from scripts.common.budget import format_duration, job_budget
    from scripts.common.config import predicted_overruns
    from scripts.summary.scaling import power_law

    timing = merged_timing(config)
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


def snakemake_running_in(root: Path) -> bool:
    """Whether a Snakemake process works in ``root`` (``snakemake ...`` or ``python -m
    snakemake ...``, any user this process may inspect)."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["pid"] == os.getpid() or not cmd:
            continue
        head = [Path(c).name for c in cmd[:3]]
        if "snakemake" not in head and cmd[1:3] != ["-m", "snakemake"]:
            continue
        try:
            if Path(proc.cwd()).resolve() == root.resolve():
                return True
        except (psutil.Error, OSError):
            continue
    return False


def unlock_if_stale(root: Path = ROOT) -> bool:
    """A sitting that ends mid-run (the session closes, the machine goes away) leaves
    Snakemake's lock behind, and the next ``run`` would stop at "Directory cannot be locked".
    When no Snakemake works in ``root``, the lock is stale: remove it (``snakemake --unlock``)
    and say so. A live run's lock is left alone. Returns whether a lock was removed."""
    locks = root / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()) or snakemake_running_in(root):
        return False
    print(
        f"ladder: {locks.relative_to(root)} holds the lock of an earlier run that no longer runs "
        "(no Snakemake works in this directory): removing it with snakemake --unlock",
        flush=True,
    )
    cmd = ["snakemake", "--configfile", CONFIG, "--unlock", "--cores", "1", "--quiet", "all"]
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    return True


def run(rungs: list[int] | None, methods: list[str] | None, cores: int, shared_with: str):
    config = ladder_config()
    ensure_proxy()
    unlock_if_stale()
    ids = rung_ids(config)
    methods = methods or config["selection"]["methods"]
    recorded = json.loads(SKIPS.read_text()) if SKIPS.exists() else {}
    for size, ds in ids.items():
        if rungs and size not in rungs:
            continue
        skips = ladder_skips(config, size, methods)
        for m, why in skips.items():
            print(f"{ds}/{m}: {why}")
            recorded[f"{ds}/{m}"] = why
        SKIPS.parent.mkdir(parents=True, exist_ok=True)
        SKIPS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        targets = [f"results/metrics/{ds}/{m}.tsv" for m in methods if m not in skips]
        if not targets:
            continue
        cmd = ["snakemake", "--configfile", CONFIG, "--cores", str(cores), "--keep-going"]
        # Resume, never redo: a rung measured in an earlier sitting stays measured when the code
        # around it changed (a new default parameter of a method, say). Re-measure on purpose
        # with --forcerun; a bigger budget for a stopped job: --forcerun that job's file.
        cmd += ["--rerun-triggers", "mtime", "input", "--rerun-incomplete", *targets]
        print(f"\n== rung {size:,} cells ({ds}): {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=False)
        table(shared_with)


def versions() -> str:
    names = ["numpy", "scipy", "scikit-learn", "scanpy", "anndata", "openTSNE", "umap-learn"]
    names += ["pynndescent", "numba", "tensorflow-cpu", "tensorflow", "keras", "snakemake"]
    out = [f"python {platform.python_version()}"]
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(out)


def machine() -> str:
    import psutil

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {platform.system()}"
    )


def collect(config: dict):
    """The timing rows (one per rung x method present) and the metrics of the ladder."""
    import pandas as pd

    from scripts.summary.tables import metrics_table, timing_table

    ids = rung_ids(config)
    methods = config["selection"]["methods"]
    bench, emb, data, mets = [], [], [], []
    for ds in ids.values():
        if (ROOT / f"results/data/{ds}/pca.h5ad").exists():
            data.append(str(ROOT / f"results/data/{ds}/pca.h5ad"))
        for m in methods:
            b = ROOT / f"results/benchmarks/embed/{ds}/{m}.tsv"
            e = ROOT / f"results/embed/{ds}/{m}.h5ad"
            if b.exists() and e.exists():
                bench.append(str(b))
                emb.append(str(e))
            t = ROOT / f"results/metrics/{ds}/{m}.tsv"
            if t.exists():
                mets.append(str(t))
    timing = timing_table(bench, emb, data) if bench else pd.DataFrame()
    metrics = metrics_table(mets) if mets else pd.DataFrame()
    return timing, metrics


#: The status column's text -> the timing table's status code (rows measured, or stopped).
_STATUS_CODES = {"ok": "ok", "timeout": "timeout", "out of memory": "out_of_memory"}
_STATUS_CODES.update({"error": "error", "skipped": "skipped"})


def recorded_rows():
    """The rows of the committed table (``benchmarks/results/ladder.tsv``) that hold a
    measurement or a budget's status: what earlier sittings measured, maybe on another machine
    whose ``results/`` is gone. Empty when there is no table yet."""
    import pandas as pd

    path = RESULTS / "ladder.tsv"
    if not path.exists():
        return pd.DataFrame()
    lines = path.read_text().splitlines()
    skip = next((i for i, line in enumerate(lines) if not line.startswith("# ")), len(lines))
    rows = pd.read_csv(path, sep="\t", skiprows=skip, float_precision="round_trip")
    code = (
        rows["status"]
        .astype(str)
        .map(lambda s: next((c for k, c in _STATUS_CODES.items() if s.startswith(k)), None))
    )
    rows = rows[code.notna()].copy()
    rows["status_code"] = code[code.notna()]
    return rows.reset_index(drop=True)


def merged_timing(config: dict, timing=None, recorded=None):
    """The timing rows of this machine's ``results/`` and, for every rung x method they lack,
    the committed table's row (as a timing row): the ladder resumes across machines."""
    import pandas as pd

    timing = collect(config)[0] if timing is None else timing
    recorded = recorded_rows() if recorded is None else recorded
    if recorded.empty:
        return timing
    have = set(zip(timing["dataset"], timing["method"])) if len(timing) else set()
    old = recorded[[(d, m) not in have for d, m in zip(recorded["dataset"], recorded["method"])]]
    old = pd.DataFrame(
        {
            "method": old["method"],
            "method_label": old["label"],
            "dataset": old["dataset"],
            "n_cells": old["n_cells"].astype(int),
            "fit_seconds": old["fit_s"],
            "s": old["job_s"],
            "peak_rss_mb": old["peak_rss_mb"],
            "max_rss_mb": old["max_rss_mb"],
            "status": old["status_code"],
            "status_message": old["status"],
            "fit_cpu_seconds": old["fit_cpu_s"],
            "threads_used": old["threads_used"],
            "threads": old["threads"],
            "cpu_seconds": old["cpu_s"],
        }
    )
    merged = pd.concat([timing, old], ignore_index=True) if len(timing) else old
    order = {m: i for i, m in enumerate(config["selection"]["methods"])}
    merged = merged.assign(_o=merged["method"].map(order)).sort_values(["_o", "n_cells"])
    return merged.drop(columns="_o").reset_index(drop=True)


_STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) "


def tsne_progress(log_text: str, total_iterations: int) -> str | None:
    """How far a t-SNE job got before its budget ended it, from its log: the affinity time,
    the last iteration reported, the time per iteration (the median between iteration reports) and the
    full fit extrapolated from them (stated as such: not measured)."""
    import re

    def when(line):
        m = re.match(_STAMP, line)
        return dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp() + (
            int(m.group(2)) / 1000
        )

    lines = [x for x in log_text.splitlines() if re.match(_STAMP, x)]
    start = next((when(x) for x in lines if "input pca" in x or "input " in x), None)
    aff = next(
        (when(x) for x in lines if "affinities (k =" in x or "Precomputed affinities" in x), None
    )
    its, offset, last = [], 0, 0
    for x in lines:
        if m := re.search(r"iteration (\d+):", x):
            n = int(m.group(1))
            if n <= last:  # openTSNE counts the phase after early exaggeration from 0 again
                offset += last
            last = n
            its.append((offset + n, when(x)))
    if start is None or aff is None or not its:
        return None
    # the median over the intervals between reports: robust to a stretch shared with other work
    steps = [(t - s) / (n - m) for (m, s), (n, t) in zip(its, its[1:], strict=False) if n > m]
    n1 = its[-1][0]
    per = float(sorted(steps)[len(steps) // 2]) if steps else (its[0][1] - aff) / its[0][0]
    full = (aff - start) + total_iterations * per
    return (
        f"reached iteration {n1} of {total_iterations}; affinities {(aff - start) / 60:.1f} min; "
        f"{per:.2f} s per iteration; full fit extrapolated to {full / 60:.0f} min (not measured)"
    )


def ladder_rows(config: dict, timing, metrics, recorded=None):
    """Every method x rung: the numbers, or the status, or 'not run yet'. A rung x method that
    this machine's ``results/`` lacks keeps its row of the committed table (``recorded``)."""
    import numpy as np
    import pandas as pd

    rows = []
    labels = {m: config["methods"][m]["label"] for m in config["selection"]["methods"]}
    skips = json.loads(SKIPS.read_text()) if SKIPS.exists() else {}
    recorded = recorded_rows() if recorded is None else recorded
    for size, ds in rung_ids(config).items():
        for m in config["selection"]["methods"]:
            sub = timing[(timing["dataset"] == ds) & (timing["method"] == m)] if len(timing) else []
            row = {"method": m, "label": labels[m], "rung": size, "dataset": ds}
            if len(sub) == 0:
                old = (
                    recorded[(recorded["dataset"] == ds) & (recorded["method"] == m)]
                    if len(recorded)
                    else []
                )
                if len(old):
                    rows.append(old.iloc[0].drop("status_code").to_dict())
                    continue
                row["status"] = skips.get(f"{ds}/{m}", "not run yet")
                rows.append(row)
                continue
            r = sub.iloc[0]
            row.update(
                {
                    "status": r["status_message"] if r["status"] != "ok" else "ok",
                    "n_cells": int(r["n_cells"]),
                    "job_s": r["s"],
                    "max_rss_mb": r["max_rss_mb"],
                    "fit_s": r["fit_seconds"],
                    "fit_cpu_s": r["fit_cpu_seconds"],
                    "threads_used": r["threads_used"],
                    "threads": r["threads"],
                    "cpu_s": r["cpu_seconds"],
                    "peak_rss_mb": r["peak_rss_mb"],
                }
            )
            entry = config["methods"][m]
            log = ROOT / f"results/logs/embed/{ds}/{m}.log"
            if r["status"] == "timeout" and entry.get("algorithm") == "tsne" and log.exists():
                params = entry.get("params", {})
                total = params.get("early_exaggeration_iter", 250) + params.get("n_iter", 750)
                row["progress"] = tsne_progress(log.read_text(errors="replace"), total)
            if len(metrics):
                sel = metrics[(metrics["dataset"] == ds) & (metrics["method"] == m)]
                for metric in ("knn_accuracy", "knc", "cpd"):
                    v = sel.loc[sel["metric"] == metric, "value"]
                    row[metric] = float(v.iloc[0]) if len(v) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def header(record: dict | None, shared_with: str) -> list[str]:
    lines = [
        "Scaling ladder of scdrbench on the 1.3M-cell proxy (benchmarks/ladder.py)",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {machine()}",
        f"shared with: {shared_with}",
        f"versions: {versions()}",
        "command: make ladder  (python benchmarks/ladder.py run && python benchmarks/ladder.py table)",
        "config: benchmarks/ladder.yaml (2 threads per job; budget 100 min and 22 GiB per "
        "embedding job, 60 min and 16 GiB per scoring job)",
        "columns: job_s and max_rss_mb: Snakemake's benchmark (whole job, memory sampled); "
        "fit_s: the fit alone; fit_cpu_s: CPU seconds of the fit (all threads); threads_used = "
        "fit_cpu_s / fit_s; cpu_s: CPU seconds of the whole job process; peak_rss_mb: the "
        "kernel's high-water mark (getrusage)",
    ]
    if record:
        lines.append(
            f"proxy: {record.get('path')} generated in {record.get('seconds')} s, "
            f"{record.get('nnz', 0):,} non-zeros, sha256 {record.get('sha256')}"
        )
    return lines


def table(shared_with: str) -> None:
    import pandas as pd

    from scripts.summary.scaling import scaling_figure

    config = ladder_config()
    timing, metrics = collect(config)
    recorded = recorded_rows()
    rows = ladder_rows(config, timing, metrics, recorded)
    timing = merged_timing(config, timing, recorded)
    record = json.loads((ROOT / RECORD).read_text()) if (ROOT / RECORD).exists() else None
    head = header(record, shared_with)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "ladder.tsv", "w") as fh:
        fh.writelines(f"# {line}\n" for line in head)
        rows.to_csv(fh, sep="\t", index=False)
    md = "\n".join(f"> {line}  " for line in head) + "\n\n"
    md += rows.to_markdown(index=False, floatfmt=".4g") + "\n"
    (RESULTS / "ladder.md").write_text(md)
    if len(timing):
        fits = scaling_figure(
            timing,
            [str(RESULTS / "ladder_scaling.png"), str(RESULTS / "ladder_scaling.pdf")],
            extrapolate_to=max(rung_ids(config)),
        )
        fits.to_csv(RESULTS / "ladder_fits.tsv", sep="\t", index=False)
        print(pd.DataFrame(fits).to_string(index=False))
    print(rows.to_string(index=False))


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
    head = header(json.loads((ROOT / RECORD).read_text()), shared_with)
    head[0] = "The summary stage on the 1.3M-cell proxy (benchmarks/ladder.py summary)"
    head[5] = "command: python benchmarks/ladder.py summary"
    head[7] = "columns: job: the summary rule; s and max_rss_mb: Snakemake's benchmark of the job"
    head.append(
        f"{len(methods)} methods with a 1.3M result: {', '.join(methods)}; up to {cores} "
        f"summary jobs at once (1 thread each); the whole stage took {wall:.0f} s "
        f"including Snakemake's start; the largest job peaked at {df['max_rss_mb'].max():.0f} MB"
    )
    with open(RESULTS / "ladder_summary.tsv", "w") as out:
        out.writelines(f"# {line}\n" for line in head)
        df.to_csv(out, sep="\t", index=False)
    md = "\n".join(f"> {line}  " for line in head) + "\n\n"
    (RESULTS / "ladder_summary.md").write_text(md + df.to_markdown(index=False) + "\n")
    print(df.to_string(index=False))
    print(head[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--rungs", nargs="+", type=int, help="n_cells of the rungs (default: all)")
    r.add_argument("--methods", nargs="+", help="method ids (default: the ladder's selection)")
    r.add_argument("--cores", type=int, default=2)
    sm = sub.add_parser("summary", help="time the summary stage on the 1.3M rung")
    sm.add_argument("--cores", type=int, default=2)
    for sp_ in (r, sub.add_parser("table"), sm):
        sp_.add_argument("--shared-with", default=SHARED_WITH_DEFAULT)
    a = p.parse_args(argv)
    if a.command == "run":
        run(a.rungs, a.methods, a.cores, a.shared_with)
    elif a.command == "summary":
        summary(a.shared_with, a.cores)
    else:
        table(a.shared_with)


if __name__ == "__main__":
    main()
