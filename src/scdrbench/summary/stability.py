"""The stability table and figure (the stability stage's per-job files, ``scdrbench.stages.stability``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scdrbench.common.io import read_h5ad, read_table

#: the columns of the markdown table, in order (agreements first, then a few metrics)
SHOWN = ("procrustes", "jaccard", "knn_accuracy", "knn", "cpd", "qnx_auc")
#: the metrics that compare two runs (one value per pair of runs, not per run)
AGREEMENTS = ("procrustes", "jaccard")


def stability_table(tsv_files) -> pd.DataFrame:
    """Per data set, method, kind (seed, subsample) and metric: mean, sd and number of values.

    ``n`` counts the values (runs, or pairs of runs for an agreement); ``sd`` is the sample
    standard deviation, NaN (not available, never 0) when fewer than two values have one.
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
        sd=lambda v: float(np.std(v.dropna(), ddof=1)) if v.notna().sum() > 1 else np.nan,
        n="count",
    )
    return stats.reset_index()


def _plural(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def stability_markdown(table: pd.DataFrame) -> str:
    """One section per data set: methods x (kind, agreement/metric) as mean +- sd, with the
    number of runs and of pairs of runs behind them."""
    parts = [
        "# Stability",
        "Mean +- standard deviation over the runs of each kind: seed = several seeds on all "
        "cells, subsample = fixed-seed subsamples; runs and pairs: how many runs, and pairs of "
        "runs, the numbers stand on. +- n/a: a single run or a single pair, whose spread is "
        "not defined. procrustes: disparity between two runs after the optimal rotation and "
        "scaling (0 = same picture); jaccard: mean overlap of each cell's 10 nearest "
        "neighbours (1 = same neighbourhoods); the metrics as in metrics.md.",
    ]
    columns = ["method", "kind", "runs", "pairs", *SHOWN]
    for ds, sub in table.groupby("dataset", sort=False):
        rows = []
        for (method, kind), grp in sub.groupby(["method", "kind"], sort=False):
            stat = grp.set_index("metric")
            if kind == "status":
                rows.append({"method": method, "kind": "status", SHOWN[0]: stat.index[0]})
                continue
            agree = stat.index.isin(AGREEMENTS)
            runs = int(stat.loc[~agree, "n"].max()) if (~agree).any() else 0
            pairs = int(stat.loc[agree, "n"].max()) if agree.any() else 0
            row = {"method": method, "kind": kind, "runs": str(runs), "pairs": str(pairs)}
            for m in SHOWN:
                if m in stat.index and np.isfinite(stat.loc[m, "mean"]):
                    mean, sd, n = stat.loc[m, ["mean", "sd", "n"]]
                    spread = f"{sd:.3f}" if n > 1 and np.isfinite(sd) else "n/a"
                    row[m] = f"{mean:.3f} +- {spread}"
                    if n != (pairs if m in AGREEMENTS else runs):
                        row[m] += f" ({_plural(int(n), 'pair' if m in AGREEMENTS else 'run')})"
                else:
                    row[m] = "n/a"
            rows.append(row)
        frame = pd.DataFrame(rows, columns=columns).fillna("")
        parts.append(f"## {ds}\n\n" + frame.to_markdown(index=False, disable_numparse=True))
    return "\n\n".join(parts) + "\n"


def draw_stability(h5ad_files):
    """The stability figure (unsaved), in the comparison's layout (a block per data set, a panel
    per method: :func:`scdrbench.summary.figures.panel_blocks`): each method's seed runs overlaid,
    aligned to the first, one colour per run. Each panel axis has the ``gid``
    ``dataset/method``."""
    import seaborn as sns

    from scdrbench.summary.figures import block_legend, panel_blocks, panel_title, status_panel

    by_ds: dict[str, list] = {}
    for path in h5ad_files:
        by_ds.setdefault(Path(path).parent.name, []).append(path)
    fig, blocks = panel_blocks([(ds, len(paths)) for ds, paths in by_ds.items()])
    for (ds, paths), (subfig, axes) in zip(by_ds.items(), blocks, strict=False):
        handles = None
        for ax, path in zip(axes, paths, strict=True):
            a = read_h5ad(path, what="stability file")
            ax.set_gid(f"{ds}/{Path(path).stem}")
            ax.set_title(panel_title(a.uns.get("method_label", Path(path).stem)), fontsize=8)
            seeds = [k for k in a.obsm if k.startswith("run_seed")]
            if a.uns.get("status", "ok") != "ok" or not seeds:
                status_panel(ax, a.uns.get("status_message", "no runs"))
                continue
            colours = sns.color_palette("tab10", len(seeds))
            for colour, key in zip(colours, seeds, strict=True):
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
            if handles is None:
                handles = ax.get_legend_handles_labels()[0]
        if handles:
            block_legend(subfig, handles, markerscale=4)
    fig.suptitle("seed runs overlaid after Procrustes alignment to the first", fontsize=9)
    return fig


def stability_figure(h5ad_files, outputs) -> None:
    """Draw the stability figure (:func:`draw_stability`) and write it to every output."""
    import matplotlib.pyplot as plt

    from scdrbench.summary.figures import save_figure

    fig = draw_stability(h5ad_files)
    save_figure(fig, outputs)
    plt.close(fig)
