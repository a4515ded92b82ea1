"""The stability table and figure (the stability stage's per-job files, ``scripts/stability.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scripts.common.io import atomic_path, read_h5ad, read_table

#: the columns of the markdown table, in order (agreements first, then a few metrics)
SHOWN = ("procrustes", "jaccard", "knn_accuracy", "knn", "cpd", "qnx_auc")


def stability_table(tsv_files) -> pd.DataFrame:
    """Per data set, method, kind (seed, subsample) and metric: mean, sd and number of values.

    A job recorded with a status (it failed or ran past its budget) gives one row with that
    status as ``metric`` and NaN statistics.
    """
    frames = [read_table(p, what="stability file", columns=["metric", "value"]) for p in tsv_files]
    if not frames:
        return pd.DataFrame(columns=["dataset", "method", "kind", "metric", "mean", "sd", "n"])
    df = pd.concat(frames, ignore_index=True)
    keys = ["dataset", "method", "kind", "metric"]
    stats = df.groupby(keys, sort=False)["value"].agg(
        mean="mean",
        sd=lambda v: float(np.std(v, ddof=1)) if v.notna().sum() > 1 else 0.0,
        n="count",
    )
    return stats.reset_index()


def stability_markdown(table: pd.DataFrame) -> str:
    """One section per data set: methods x (kind, agreement/metric) as mean +- sd."""
    parts = [
        "# Stability",
        "Mean +- standard deviation over the runs of each kind: seed = several seeds on all "
        "cells, subsample = fixed-seed subsamples. procrustes: disparity between two runs after "
        "the optimal rotation and scaling (0 = same picture); jaccard: mean overlap of each "
        "cell's 10 nearest neighbours (1 = same neighbourhoods); the metrics as in metrics.md.",
    ]
    for ds, sub in table.groupby("dataset", sort=False):
        rows = []
        for (method, kind), grp in sub.groupby(["method", "kind"], sort=False):
            stat = grp.set_index("metric")
            if kind == "status":
                rows.append({"method": method, "kind": "status", SHOWN[0]: stat.index[0]})
                continue
            row = {"method": method, "kind": kind}
            for m in SHOWN:
                if m in stat.index and np.isfinite(stat.loc[m, "mean"]):
                    row[m] = f"{stat.loc[m, 'mean']:.3f} +- {stat.loc[m, 'sd']:.3f}"
                else:
                    row[m] = "n/a"
            rows.append(row)
        frame = pd.DataFrame(rows, columns=["method", "kind", *SHOWN]).fillna("")
        parts.append(f"## {ds}\n\n" + frame.to_markdown(index=False, disable_numparse=True))
    return "\n\n".join(parts) + "\n"


def stability_figure(h5ad_files, outputs) -> None:
    """A row per data set, a panel per method: its seed runs overlaid (aligned to the first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    by_ds: dict[str, list] = {}
    for path in h5ad_files:
        by_ds.setdefault(Path(path).parent.name, []).append(path)
    ncol = max((len(v) for v in by_ds.values()), default=1)
    nrow = max(len(by_ds), 1)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(2.4 * ncol + 1, 2.6 * nrow), squeeze=False, layout="constrained"
    )
    for i, (ds, paths) in enumerate(by_ds.items()):
        for j, path in enumerate(paths):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            a = read_h5ad(path, what="stability file")
            title = str(a.uns.get("method_label", Path(path).stem))
            seeds = [k for k in a.obsm if k.startswith("run_seed")]
            if a.uns.get("status", "ok") != "ok" or not seeds:
                ax.text(
                    0.5,
                    0.5,
                    str(a.uns.get("status_message", "no runs")),
                    ha="center",
                    va="center",
                    fontsize=7,
                    wrap=True,
                    transform=ax.transAxes,
                )
                ax.set_title(title, fontsize=8)
                continue
            colours = sns.color_palette("tab10", len(seeds))
            for colour, key in zip(colours, seeds):
                xy = np.asarray(a.obsm[key])
                ax.scatter(
                    xy[:, 0],
                    xy[:, 1],
                    s=2,
                    color=colour,
                    alpha=0.5,
                    linewidths=0,
                    rasterized=True,
                    label=key.removeprefix("run_"),
                )
            ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(ds, fontsize=9)
        for j in range(len(paths), ncol):
            axes[i, j].set_axis_off()
    if by_ds:
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(
                handles,
                labels,
                loc="outside right center",
                fontsize=7,
                frameon=False,
                markerscale=4,
            )
    fig.suptitle("seed runs overlaid after Procrustes alignment to the first", fontsize=9)
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip("."))
    plt.close(fig)
