"""Tables of the whole grid: timing (Snakemake's benchmark rows beside the in-script numbers and
each job's status), metrics (the tidy per-job files concatenated) and the ranking.

Each function takes the explicit file lists the workflow passes (``expand``-ed, never a
directory walk) and writes atomically.

Ranking (``ranking_table``): within a dataset, every metric ranks the methods (1 = best, ties
share the average rank); a method's score is its mean rank over the metrics. NaN handling:

- a metric that is NaN for *every* method of a dataset (not applicable there, e.g. label metrics
  on a single-label dataset) is left out of that dataset's ranking, and named in ``left_out``;
- a NaN for *some* methods ranks those methods last on that metric (tied among themselves at the
  average of the last places): a method that diverged or could not be scored never gains from
  it. ``n_not_scored`` counts these per method.

Methods are ordered by mean rank; equal mean ranks share the same ``rank`` and are listed by id.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from scdrbench.common import keep
from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.io import read_table, rebuild_hint
from scdrbench.metrics.registry import METRICS

log = logging.getLogger("scdrbench.summary")


TIMING_COLUMNS = [
    "dataset",
    "method",
    "method_label",
    "repeat",
    "n_cells",
    "n_genes",
    "input",
    "input_dims",
    "threads",
    "s",
    "max_rss_mb",
    "cpu_time",
    "fit_seconds",
    "fit_cpu_seconds",
    "threads_used",
    "cpu_seconds",
    "peak_rss_mb",
    "status",
    "status_message",
    "essay_1m_seconds",
]

#: The essay's run times on the 1.3M mouse brain cells (its hardware, not ours).
ESSAY_RUNTIMES = Path(__file__).with_name("essay_runtimes.tsv")


def essay_runtimes() -> pd.DataFrame:
    """``method, essay_1m_seconds, note`` (src/scdrbench/summary/essay_runtimes.tsv)."""
    return pd.read_csv(ESSAY_RUNTIMES, sep="\t", comment="#")


def _ids_from_path(path: str) -> tuple[str, str]:
    """``.../{dataset}/{method}.ext`` -> (dataset, method)."""
    p = Path(path)
    return p.parent.name, p.stem


def read_embedding_meta(path: str) -> dict:
    """The ``uns`` entries of an embedding file, without loading coordinates."""
    from scdrbench.common import embedding_file

    return embedding_file.read_meta(path)


def read_dataset_meta(path: str) -> dict:
    """n_cells and n_genes of a pca.h5ad without loading the matrix."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            n_genes = f["uns"]["n_genes"][()] if "n_genes" in f["uns"] else np.nan
            n_cells = f["obsm"]["X_pca"].shape[0]
    except (OSError, KeyError) as err:
        raise ScdrbenchError(
            f"dataset file {path} is not a readable pca.h5ad ({type(err).__name__}: "
            f"{' '.join(str(err).split())}); {rebuild_hint(path)}"
        ) from None
    return {"n_cells": int(n_cells), "n_genes": int(n_genes)}


def timing_table(benchmarks, embeddings, datasets, labels: dict | None = None) -> pd.DataFrame:
    """One row per dataset x method x repeat: Snakemake's benchmark + in-script numbers.

    ``labels`` (method id -> label, the config's) win over the label an embedding file was made
    with: a changed label re-runs no embedding, only the summary.
    """
    labels = labels or {}
    emb_by_key = {_ids_from_path(p): p for p in embeddings}
    ds_meta = {Path(p).parent.name: read_dataset_meta(p) for p in datasets}
    essay = essay_runtimes().set_index("method")["essay_1m_seconds"].to_dict()
    rows = []
    for bench in benchmarks:
        key = _ids_from_path(bench)
        if key not in emb_by_key:
            raise ScdrbenchError(f"benchmark {bench} has no matching embedding file")
        # a benchmark file is remade by its embedding job
        bdf = read_table(bench, what="benchmark file", columns=["s"], rebuild=emb_by_key[key])
        meta = read_embedding_meta(emb_by_key[key])
        # a result kept through a failed re-run: Snakemake's benchmark measured the failed run
        kept = keep.rerun_failure(emb_by_key[key])
        fits = np.atleast_1d(meta.get("fit_seconds_repeats", [meta.get("fit_seconds", np.nan)]))
        peaks = np.atleast_1d(meta.get("peak_rss_mb_repeats", [meta.get("peak_rss_mb", np.nan)]))
        cpus = np.atleast_1d(
            meta.get("fit_cpu_seconds_repeats", [meta.get("fit_cpu_seconds", np.nan)])
        )
        for r, brow in enumerate(bdf.itertuples(index=False)):
            fit = float(fits[r]) if r < len(fits) else np.nan
            fit_cpu = float(cpus[r]) if r < len(cpus) else np.nan
            rows.append(
                {
                    "dataset": key[0],
                    "method": key[1],
                    "method_label": labels.get(key[1], meta.get("method_label", key[1])),
                    "repeat": r + 1,
                    "n_cells": meta["n_cells"],
                    "n_genes": ds_meta.get(key[0], {}).get("n_genes", np.nan),
                    "input": meta.get("input", ""),
                    "input_dims": meta.get("input_dims", np.nan),
                    "threads": meta.get("threads", np.nan),
                    "s": np.nan if kept else float(brow.s),
                    "max_rss_mb": _number(brow.max_rss, kept),
                    "cpu_time": _number(brow.cpu_time, kept),
                    "fit_seconds": fit,
                    "fit_cpu_seconds": fit_cpu,
                    "threads_used": fit_cpu / fit if fit > 0 else np.nan,
                    "cpu_seconds": meta.get("cpu_seconds", np.nan),
                    "peak_rss_mb": float(peaks[r]) if r < len(peaks) else np.nan,
                    "status": meta.get("status", "ok"),
                    "status_message": kept or meta.get("status_message", "ok"),
                    "essay_1m_seconds": essay.get(key[1], np.nan),
                }
            )
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def _number(value, kept) -> float:
    """A benchmark field as a float (NaN for "NA", or for a kept result's failed re-run)."""
    return np.nan if kept or value == "NA" else float(value)


def _read_metrics(path, embedding=None) -> pd.DataFrame:
    """One job's metric file; ``kept`` says when its scores come from a result kept through a
    failed re-run (of the scoring job, or of the embedding job it scored)."""
    df = read_table(
        path,
        what="metrics file",
        columns=["dataset", "method", "metric", "value"],
        keep_default_na=False,
        na_values=[""],
    )
    df["kept"] = kept_line(path, embedding)
    return df


def kept_line(*outputs) -> str:
    """The one-line note of the first of ``outputs`` kept through a failed re-run, or ``""``."""
    for output in outputs:
        line = keep.rerun_failure(output) if output else None
        if line:
            return line
    return ""


def metrics_table(metric_files, embeddings=()) -> pd.DataFrame:
    """Concatenate the tidy per-job metric files and add the scaled score (:func:`scale`).

    ``embeddings`` (the grid's embedding files) mark scores made from a kept embedding: column
    ``kept``, the one-line note of the failed re-run, empty for a fresh result.
    """
    emb_by_key = {_ids_from_path(p): p for p in embeddings}
    frames = [_read_metrics(p, emb_by_key.get(_ids_from_path(p))) for p in metric_files]
    if not frames:
        return pd.DataFrame()
    return scale(pd.concat(frames, ignore_index=True))


def kept_methods(table: pd.DataFrame, dataset: str) -> dict[str, str]:
    """Method -> kept line of one data set, from a metrics (``kept``) or ranking table."""
    if "kept" not in table or not len(table):
        return {}
    sub = table[(table["dataset"] == dataset) & table["kept"].notna()]
    sub = sub[sub["kept"].astype(str).str.strip() != ""]
    return dict(zip(sub["method"], sub["kept"].astype(str), strict=True))


def scale(metrics: pd.DataFrame) -> pd.DataFrame:
    """Add ``scaled``: each score between its controls, as Open Problems scales them.

    Per data set and metric, ``(value - negative) / (best positive - negative)``: the negative
    control (random; the mean if several) at 0, the best positive control (true features,
    spectral embedding) at 1; higher is better after scaling for every metric. NaN where the
    data set lacks a negative or a positive control with a value, or they are equal. A method can
    score above 1 (better than every positive control on that metric) or below 0.
    """
    out = metrics.copy()
    out["scaled"] = np.nan
    if "control" not in out:
        return out
    control = out["control"].fillna("").astype(str)
    for _, sub in out.groupby(["dataset", "metric"], sort=False):
        values = sub["value"].astype(float)
        neg = values[control[sub.index] == "negative"].dropna()
        pos = values[control[sub.index] == "positive"].dropna()
        if neg.empty or pos.empty:
            continue
        hib = str(sub["higher_is_better"].iloc[0]).strip().lower() in ("true", "1")
        sign = 1.0 if hib else -1.0
        low, high = sign * neg.mean(), (sign * pos).max()
        if not np.isfinite(high - low) or high == low:
            continue
        out.loc[sub.index, "scaled"] = (sign * values - low) / (high - low)
    return out


def to_markdown(df: pd.DataFrame, floatfmt=".3g") -> str:
    """A GitHub-flavoured markdown table."""
    return df.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def metric_order(metrics: pd.DataFrame) -> list[str]:
    """Metric ids present in the table: the scoring module's order, unknown ids after."""
    present = list(dict.fromkeys(metrics["metric"]))
    return [m for m in METRICS if m in present] + [m for m in present if m not in METRICS]


def metric_matrix(metrics: pd.DataFrame, dataset: str, column: str = "value") -> pd.DataFrame:
    """methods x metrics ``column`` (value or scaled) of one dataset (methods in table order,
    NaN where missing)."""
    sub = metrics[metrics["dataset"] == dataset]
    dup = sub.duplicated(["method", "metric"])
    if dup.any():
        first = sub[dup].iloc[0]
        raise ScdrbenchError(
            f"metrics table has more than one row for {dataset}/{first['method']}/"
            f"{first['metric']}; each metric file must hold one row per metric"
        )
    wide = sub.set_index(["method", "metric"])[column].astype(float).unstack("metric")
    methods = list(dict.fromkeys(sub["method"]))
    return wide.reindex(index=methods, columns=metric_order(metrics))


def _higher_is_better(metrics: pd.DataFrame) -> dict[str, bool]:
    if "higher_is_better" not in metrics:
        return {}
    flags = metrics.groupby("metric")["higher_is_better"].first()
    return {m: str(v).strip().lower() in ("true", "1") for m, v in flags.items()}


def _method_labels(timing: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    if timing is None or "method_label" not in timing:
        return {}
    return {(r.dataset, r.method): r.method_label for r in timing.itertuples()}


def ranking_table(metrics: pd.DataFrame, timing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per dataset, methods ordered by mean rank across metrics, with median timings.

    See the module docstring for how NaN values are handled. Columns: dataset, rank, method,
    method_label, mean_rank, n_metrics_ranked, n_not_scored, ``rank_<metric>`` for every metric
    (NaN for a metric left out), job_s, fit_s, peak_rss_mb (medians over repeats, NaN without a
    timing table), left_out (the dataset's metrics left out, comma-separated), kept (the
    metrics table's ``kept`` line: the method's scores come from a result kept through a failed
    re-run; empty otherwise).
    """
    hib = _higher_is_better(metrics)
    labels = _method_labels(timing)
    med = pd.DataFrame()
    if timing is not None and len(timing):
        cols = [c for c in ("s", "fit_seconds", "peak_rss_mb") if c in timing]
        med = timing.groupby(["dataset", "method"])[cols].median()
    order = metric_order(metrics) if len(metrics) else []
    frames = []
    for ds in dict.fromkeys(metrics["dataset"]) if len(metrics) else []:
        wide = metric_matrix(metrics, ds)
        ranks = pd.DataFrame(index=wide.index)
        left_out = []
        for metric in order:
            col = wide[metric]
            if col.isna().all():
                left_out.append(metric)
                continue
            better_first = -col if hib.get(metric, True) else col
            ranks[metric] = better_first.rank(method="average", na_option="bottom")
        used = [m for m in order if m not in left_out]
        out = pd.DataFrame(
            {
                "dataset": ds,
                "method": wide.index,
                "method_label": [labels.get((ds, m), m) for m in wide.index],
                "mean_rank": ranks[used].mean(axis=1).to_numpy() if used else np.nan,
                "n_metrics_ranked": len(used),
                "n_not_scored": wide[used].isna().sum(axis=1).to_numpy() if used else 0,
            }
        )
        for metric in order:
            out[f"rank_{metric}"] = ranks[metric].to_numpy() if metric in ranks else np.nan
        for src, dst in (("s", "job_s"), ("fit_seconds", "fit_s"), ("peak_rss_mb", "peak_rss_mb")):
            out[dst] = [
                med.loc[(ds, m), src] if (ds, m) in med.index and src in med else np.nan
                for m in wide.index
            ]
        out["left_out"] = ",".join(left_out)
        kept = kept_methods(metrics, ds)
        out["kept"] = [kept.get(m, "") for m in wide.index]
        out = out.sort_values(["mean_rank", "method"], kind="stable", na_position="last")
        out.insert(1, "rank", out["mean_rank"].rank(method="min").astype("Int64").to_numpy())
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=["dataset", "rank", "method", "mean_rank"])
    return pd.concat(frames, ignore_index=True)


def _fmt_value(v: float, fmt: str = ".3f") -> str:
    return "n/a" if pd.isna(v) or not np.isfinite(v) else format(v, fmt)


def _fmt_seconds(s: float) -> str:
    if not np.isfinite(s):
        return "n/a"
    if s < 0.1:
        return f"{s * 1000:.1f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
