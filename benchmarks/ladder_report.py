"""The scaling ladder's table and figure (``python benchmarks/ladder.py table``).

``table`` writes ``benchmarks/results/ladder.{tsv,md}`` (every method at every rung: its numbers,
or its status, or "not run yet"), ``measured_peaks.tsv`` (each job's memory peak per rung, the
file the memory models are checked against), ``ladder_fits.tsv`` (time ~ n^b and memory ~ n^c per method),
``ladder_scaling.{png,pdf}`` and ``ladder_variants.md`` (``ladder_views.py``). The numbers come from the workflow's own files in ``results/``:
Snakemake's ``benchmark:`` rows (whole-job seconds, max RSS) and the embedding files (fit
seconds, fit CPU seconds, kernel peak, status). A rung x method that this machine's
``results/`` lacks keeps its row of the committed table: ``results/`` is not kept between
sittings, so a new machine adds to the table and never shrinks it, and the ladder's skips and
power laws see every rung measured so far (``merged_timing``).
"""

from __future__ import annotations

import datetime as dt
import json

import ladder_setup as L  # the ladder's paths, config and rungs

from scdrbench.common.provenance import machine, versions


def collect(config: dict):
    """The timing rows (one per rung x method present) and the metrics of the ladder."""
    import pandas as pd

    from scdrbench.summary.tables import metrics_table, timing_table

    ids = L.rung_ids(config)
    methods = config["selection"]["methods"]
    bench, emb, data, mets = [], [], [], []
    for ds in ids.values():
        if (L.ROOT / f"results/data/{ds}/pca.h5ad").exists():
            data.append(str(L.ROOT / f"results/data/{ds}/pca.h5ad"))
        for m in methods:
            b = L.ROOT / f"results/benchmarks/embed/{ds}/{m}.tsv"
            e = L.ROOT / f"results/embed/{ds}/{m}.h5ad"
            if b.exists() and e.exists():
                bench.append(str(b))
                emb.append(str(e))
            t = L.ROOT / f"results/metrics/{ds}/{m}.tsv"
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

    path = L.RESULTS / "ladder.tsv"
    if not path.exists():
        return pd.DataFrame()
    lines = path.read_text().splitlines()
    skip = next((i for i, line in enumerate(lines) if not line.startswith("# ")), len(lines))
    rows = pd.read_csv(path, sep="\t", skiprows=skip, float_precision="round_trip")
    if "machine" not in rows:
        # a table from before the machine column: its header's machine measured every row
        said = [
            line[len("# machine: ") :] for line in lines[:skip] if line.startswith("# machine: ")
        ]
        rows["machine"] = said[0] if said else "not recorded"
    if "proxy_version" not in rows:
        rows["proxy_version"] = 1  # a table from before the proxy had versions: version 1
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
    # one row per rung x method: the latest proxy version's (an earlier version's row stands in
    # for a rung the current proxy has not reached yet: same cells and genes, similar costs)
    recorded = recorded.sort_values("proxy_version", kind="stable")
    recorded = recorded.drop_duplicates(["dataset", "method"], keep="last")
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


def ladder_rows(config: dict, timing, metrics, recorded=None, version=None):
    """Every method x rung: the numbers, or the status, or 'not run yet', on the proxy of
    ``version`` (default: the one on record). A rung x method that this machine's ``results/``
    lacks keeps its row of the committed table (``recorded``); rows of an earlier proxy version
    stay beside, marked with theirs (``proxy_version``). The label metrics come twice: on the
    simulated types (``knn_accuracy``, ``knc``) and on Leiden clusters of the rung's PCs
    (``knn_accuracy_leiden``, ``knc_leiden``), as the paper run labels the real file."""
    import numpy as np
    import pandas as pd

    rows = []
    labels = {m: config["methods"][m]["label"] for m in config["selection"]["methods"]}
    skips = json.loads(L.SKIPS.read_text()) if L.SKIPS.exists() else {}
    recorded = recorded_rows() if recorded is None else recorded
    here = machine()
    version = current_proxy_version() if version is None else version
    for size, ds in L.rung_ids(config).items():
        for m in config["selection"]["methods"]:
            sub = timing[(timing["dataset"] == ds) & (timing["method"] == m)] if len(timing) else []
            row = {"method": m, "label": labels[m], "rung": size, "dataset": ds}
            row["proxy_version"] = version
            mine = (
                recorded[(recorded["dataset"] == ds) & (recorded["method"] == m)]
                if len(recorded)
                else pd.DataFrame(columns=["proxy_version"])
            )
            # rows of an earlier proxy stay, marked with its version
            for _, earlier in mine[mine["proxy_version"] != version].iterrows():
                rows.append(earlier.drop("status_code").to_dict())
            if len(sub) == 0:
                old = mine[mine["proxy_version"] == version]
                if len(old):
                    rows.append(old.iloc[0].drop("status_code").to_dict())
                    continue
                row["status"] = skips.get(f"{ds}/{m}", "not run yet")
                rows.append(row)
                continue
            r = sub.iloc[0]
            row.update(
                {
                    "machine": here,
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
            log = L.ROOT / f"results/logs/embed/{ds}/{m}.log"
            if r["status"] == "timeout" and entry.get("algorithm") == "tsne" and log.exists():
                params = entry.get("params", {})
                total = params.get("early_exaggeration_iter", 250) + params.get("n_iter", 750)
                row["progress"] = tsne_progress(log.read_text(errors="replace"), total)
            if len(metrics):
                sel = metrics[(metrics["dataset"] == ds) & (metrics["method"] == m)]
                for metric in SCORED:
                    v = sel.loc[sel["metric"] == metric, "value"]
                    row[metric] = float(v.iloc[0]) if len(v) else np.nan
            rows.append(row)
    df = pd.DataFrame(rows)
    df["proxy_version"] = df["proxy_version"].fillna(1).astype(int)
    return df[[c for c in df.columns if c != "machine"] + ["machine"]]


#: The quality columns of the ladder: on the simulated types, then on Leiden clusters.
SCORED = ("knn_accuracy", "knc", "cpd", "knn_accuracy_leiden", "knc_leiden")


def current_proxy_version() -> int:
    """The version of the proxy on record (``benchmarks/results/proxy_1m.json``; 1 when the
    record predates versions or is missing)."""
    record = json.loads((L.ROOT / L.RECORD).read_text()) if (L.ROOT / L.RECORD).exists() else {}
    return int(record.get("spec", {}).get("version", 1))


#: The files of earlier proxy versions the table has rows of (their records were replaced when
#: the next version was generated; this keeps what the rows were measured on in the header).
EARLIER_PROXIES = {
    1: "proxy of the rows with proxy_version 1: scratch/proxy_1m.h5 of version 1 generated in "
    "844.2 s, 2,189,190,097 non-zeros, sha256 "
    "94c906db5fb462c0e483cf078afaa5a337780a31d184d6c77ac0ab7bb252535a",
}


def header(record: dict | None, shared_with: str) -> list[str]:
    lines = [
        "Scaling ladder of scdrbench on the 1.3M-cell proxy (benchmarks/ladder.py)",
        f"date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {machine()} (this sitting's; each row's own in its machine column)",
        L.shared_with_line(shared_with),
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
        version = record.get("spec", {}).get("version", 1)
        lines.append(
            f"proxy: version {version} (rows: proxy_version), {record.get('path')} generated in "
            f"{record.get('seconds')} s, {record.get('nnz', 0):,} non-zeros, sha256 "
            f"{record.get('sha256')}"
        )
        lines += [text for v, text in EARLIER_PROXIES.items() if v != version]
    lines.append(
        "quality: knn_accuracy, knc on the simulated types; knn_accuracy_leiden, knc_leiden on "
        "Leiden clusters (resolution 1.0) of the 1.3M PCs, a rung keeping its cells' clusters "
        "(as the paper run labels the real file and its subsamples); proxy_version 1 is the "
        "earlier proxy (types only), 4 the one calibrated against the real cells "
        "(benchmarks/results/proxy_vs_real.md; 2 and 3 were calibration steps without rows)"
    )
    return lines


def write_peaks(rows, head: list[str]) -> None:
    """``measured_peaks.tsv`` (scdrbench.common.peaks): each job's kernel peak at every rung it
    finished ok, the one file the methods' memory models are checked against."""
    from scdrbench.common import peaks

    ok = rows[(rows["status"] == "ok") & rows["peak_rss_mb"].notna()]
    # one peak per job and rung: the larger of the proxy versions' (a model bounds both)
    ok = ok.sort_values("peak_rss_mb", kind="stable").drop_duplicates(
        ["method", "n_cells"], keep="last"
    )
    title = (
        "Memory peaks of the scaling ladder's jobs (benchmarks/ladder_report.py, from ladder.tsv)"
    )
    columns = (
        "columns: job: a method id of config.yaml or benchmarks/ladder.yaml; n_cells: the rung; "
        "peak_rss_mb: the job's kernel high-water mark (getrusage), rounded; rungs it finished ok"
    )
    kept = [line for line in head[1:] if not line.startswith("columns:")]
    path = L.RESULTS / peaks.MEASURED_PEAKS.name
    rows = zip(ok["method"], ok["n_cells"], ok["peak_rss_mb"])
    peaks.write(rows, path, header=[title, *kept, columns])


def table(shared_with: str) -> None:
    import pandas as pd
    from ladder_views import variants_table

    from scdrbench.summary.scaling import scaling_figure

    config = L.ladder_config()
    timing, metrics = collect(config)
    recorded = recorded_rows()
    rows = ladder_rows(config, timing, metrics, recorded)
    timing = merged_timing(config, timing, recorded)
    record = json.loads((L.ROOT / L.RECORD).read_text()) if (L.ROOT / L.RECORD).exists() else None
    head = header(record, shared_with)
    L.RESULTS.mkdir(parents=True, exist_ok=True)
    with open(L.RESULTS / "ladder.tsv", "w") as fh:
        fh.writelines(f"# {line}\n" for line in head)
        rows.to_csv(fh, sep="\t", index=False)
    write_peaks(rows, head)
    md = "\n".join(f"> {line}  " for line in head) + "\n\n"
    md += rows.to_markdown(index=False, floatfmt=".4g") + "\n"
    (L.RESULTS / "ladder.md").write_text(md)
    version = current_proxy_version()
    variants = "\n".join(f"> {line}  " for line in head) + "\n\n"
    variants += (
        f"Each setting for large data beside the default it changes, on proxy version {version} "
        "(the same cells at each rung): default / setting in each cell, or the setting's value "
        "and the default's status in the note. From ladder.tsv "
        "(`python benchmarks/ladder.py table`).\n\n"
    )
    (L.RESULTS / "ladder_variants.md").write_text(variants + variants_table(rows, version))
    if len(timing):
        fits = scaling_figure(
            timing,
            [str(L.RESULTS / "ladder_scaling.png"), str(L.RESULTS / "ladder_scaling.pdf")],
            extrapolate_to=max(L.rung_ids(config)),
        )
        fits.to_csv(L.RESULTS / "ladder_fits.tsv", sep="\t", index=False)
        print(pd.DataFrame(fits).to_string(index=False))
    print(rows.to_string(index=False))
