"""Summaries of the whole grid: the timing table, the metrics table and the comparison figure.

Each function takes the explicit file lists the workflow passes (``expand``-ed, never a
directory walk) and writes atomically.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.common.errors import ScdrbenchError, cli_errors
from scripts.common.io import atomic_path, write_table, write_text
from scripts.common.runtime import setup_logging

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
    "peak_rss_mb",
]


def _ids_from_path(path: str) -> tuple[str, str]:
    """``.../{dataset}/{method}.ext`` -> (dataset, method)."""
    p = Path(path)
    return p.parent.name, p.stem


def _uns_scalar(uns, key, default=np.nan):
    value = uns.get(key, default)
    return value.item() if isinstance(value, np.generic) else value


def read_embedding_meta(path: str) -> dict:
    """The ``uns`` entries of an embedding file, without loading coordinates."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        uns = f["uns"]
        for key in uns:
            if isinstance(uns[key], h5py.Dataset):
                value = uns[key][()]
                out[key] = value.decode() if isinstance(value, bytes) else value
        out["n_cells"] = int(f["obsm"]["X_emb"].shape[0])
    return out


def read_dataset_meta(path: str) -> dict:
    """n_cells and n_genes of a pca.h5ad without loading the matrix."""
    import h5py

    with h5py.File(path, "r") as f:
        n_genes = f["uns"]["n_genes"][()] if "n_genes" in f["uns"] else np.nan
        n_cells = f["obsm"]["X_pca"].shape[0]
    return {"n_cells": int(n_cells), "n_genes": int(n_genes)}


def timing_table(benchmarks, embeddings, datasets) -> pd.DataFrame:
    """One row per dataset x method x repeat: Snakemake's benchmark + in-script numbers."""
    emb_by_key = {_ids_from_path(p): p for p in embeddings}
    ds_meta = {Path(p).parent.name: read_dataset_meta(p) for p in datasets}
    rows = []
    for bench in benchmarks:
        key = _ids_from_path(bench)
        if key not in emb_by_key:
            raise ScdrbenchError(f"benchmark {bench} has no matching embedding file")
        bdf = pd.read_csv(bench, sep="\t")
        meta = read_embedding_meta(emb_by_key[key])
        fits = np.atleast_1d(meta.get("fit_seconds_repeats", [meta.get("fit_seconds", np.nan)]))
        peaks = np.atleast_1d(meta.get("peak_rss_mb_repeats", [meta.get("peak_rss_mb", np.nan)]))
        for r, brow in enumerate(bdf.itertuples(index=False)):
            rows.append(
                {
                    "dataset": key[0],
                    "method": key[1],
                    "method_label": meta.get("method_label", key[1]),
                    "repeat": r + 1,
                    "n_cells": meta["n_cells"],
                    "n_genes": ds_meta.get(key[0], {}).get("n_genes", np.nan),
                    "input": meta.get("input", ""),
                    "input_dims": meta.get("input_dims", np.nan),
                    "threads": meta.get("threads", np.nan),
                    "s": float(brow.s),
                    "max_rss_mb": float(brow.max_rss) if brow.max_rss != "NA" else np.nan,
                    "cpu_time": float(brow.cpu_time) if brow.cpu_time != "NA" else np.nan,
                    "fit_seconds": float(fits[r]) if r < len(fits) else np.nan,
                    "peak_rss_mb": float(peaks[r]) if r < len(peaks) else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def metrics_table(metric_files) -> pd.DataFrame:
    """Concatenate the tidy per-job metric files."""
    frames = [pd.read_csv(p, sep="\t") for p in metric_files]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def to_markdown(df: pd.DataFrame, floatfmt=".3g") -> str:
    """A GitHub-flavoured markdown table."""
    return df.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def _fmt_seconds(s: float) -> str:
    if not np.isfinite(s):
        return "n/a"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def comparison_figure(embeddings, timing: pd.DataFrame, metrics: pd.DataFrame | None, outputs):
    """Paper-style grid: a row per dataset, a column per method, cells coloured by label."""
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    by_key = {_ids_from_path(p): p for p in embeddings}
    datasets = list(dict.fromkeys(k[0] for k in by_key))
    methods = list(dict.fromkeys(k[1] for k in by_key))
    ncol, nrow = len(methods), len(datasets)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(2.6 * ncol + 2.4, 2.7 * nrow), squeeze=False, layout="constrained"
    )
    med = timing.groupby(["dataset", "method"])[["s", "fit_seconds"]].median()
    acc = {}
    if metrics is not None and len(metrics):
        sel = metrics[metrics["metric"] == "knn_accuracy"]
        acc = {(r.dataset, r.method): r.value for r in sel.itertuples()}
    for i, ds in enumerate(datasets):
        legend_handles = None
        for j, m in enumerate(methods):
            ax = axes[i, j]
            path = by_key.get((ds, m))
            ax.set_xticks([])
            ax.set_yticks([])
            if path is None:
                ax.set_axis_off()
                continue
            emb = ad.read_h5ad(path)
            labels = emb.obs["label"].astype("category")
            cats = list(labels.cat.categories)
            palette = sns.color_palette("tab20" if len(cats) > 10 else "tab10", len(cats))
            colors = np.asarray(palette)[labels.cat.codes.to_numpy()]
            xy = emb.obsm["X_emb"]
            size = float(np.clip(2000 / max(len(xy), 1), 0.05, 6))
            order = np.random.default_rng(0).permutation(len(xy))
            ax.scatter(
                xy[order, 0], xy[order, 1], c=colors[order], s=size, linewidths=0, rasterized=True
            )
            label = emb.uns.get("method_label", m)
            s, fit = med.loc[(ds, m)] if (ds, m) in med.index else (np.nan, np.nan)
            title = f"{label}\njob {_fmt_seconds(s)}, fit {_fmt_seconds(fit)}"
            if (ds, m) in acc and not math.isnan(acc[(ds, m)]):
                title += f"\nkNN acc {acc[(ds, m)]:.2f}"
            ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{ds}\n({len(xy):,} cells)", fontsize=9)
            if legend_handles is None:
                legend_handles = [
                    plt.Line2D([], [], marker="o", ls="", color=palette[k], label=str(c))
                    for k, c in enumerate(cats)
                ]
        if legend_handles:
            axes[i, -1].legend(
                handles=legend_handles,
                loc="center left",
                bbox_to_anchor=(1.02, 0.5),
                fontsize=7,
                frameon=False,
                markerscale=0.8,
                ncol=1 if len(legend_handles) <= 14 else 2,
            )
    for out in outputs:
        suffix = Path(out).suffix
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=suffix.lstrip("."))
    plt.close(fig)


@cli_errors
def cli(argv=None) -> None:
    p = argparse.ArgumentParser(description="Summaries: timing/metrics tables, figures")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("timing")
    t.add_argument("--benchmarks", nargs="+", required=True)
    t.add_argument("--embeddings", nargs="+", required=True)
    t.add_argument("--datasets", nargs="+", required=True)
    t.add_argument("--tsv", required=True)
    t.add_argument("--md", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("--metrics", nargs="+", required=True)
    m.add_argument("--tsv", required=True)
    m.add_argument("--md", required=True)
    f = sub.add_parser("figure")
    f.add_argument("--embeddings", nargs="+", required=True)
    f.add_argument("--timing", required=True)
    f.add_argument("--metrics")
    f.add_argument("--outputs", nargs="+", required=True)
    for sp_ in (t, m, f):
        sp_.add_argument("--log")
    a = p.parse_args(argv)
    setup_logging(a.log)
    if a.command == "timing":
        df = timing_table(a.benchmarks, a.embeddings, a.datasets)
        write_table(df, a.tsv)
        write_text(to_markdown(df), a.md)
        log.info("timing table: %d rows", len(df))
    elif a.command == "metrics":
        df = metrics_table(a.metrics)
        write_table(df, a.tsv)
        wide = df.pivot_table(index=["dataset", "method"], columns="metric", values="value")
        write_text(to_markdown(wide.reset_index()), a.md)
        log.info("metrics table: %d rows", len(df))
    else:
        timing = pd.read_csv(a.timing, sep="\t")
        metrics = pd.read_csv(a.metrics, sep="\t") if a.metrics else None
        comparison_figure(a.embeddings, timing, metrics, a.outputs)
        log.info("wrote %s", ", ".join(a.outputs))


if __name__ == "__main__":
    cli()
