"""Figures: the paper-style comparison grid, one panel per embedding, the metrics heatmap and
the scaling figure (time and memory against cells, with fitted power laws)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.common import embedding_file, keep
from scripts.common.errors import ScdrbenchError
from scripts.common.io import atomic_path
from scripts.metrics import METRICS
from scripts.summary.tables import (
    _fmt_seconds,
    _fmt_value,
    _ids_from_path,
    _method_labels,
    metric_matrix,
    metric_order,
)

log = logging.getLogger("scdrbench.summary")


def metrics_heatmap(
    metrics: pd.DataFrame, ranking: pd.DataFrame | None, outputs, timing=None
) -> None:
    """methods x metrics heatmap, one panel per dataset; scores annotated, NaN shown as n/a.

    A data set with controls shows the *scaled* scores (``scaled``: the negative control at 0,
    the best positive control at 1; :func:`scripts.summary.tables.scale`), one without shows the
    raw values. Colour is on a fixed 0-1 scale either way (the same colour is the same number in
    every panel; scores below 0 or above 1 take the end colours, their number printed). Rows
    follow the ranking when one is given (best first).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    labels = _method_labels(timing)
    datasets = list(dict.fromkeys(metrics["dataset"]))
    order = metric_order(metrics)
    n_methods = max(
        (metrics[metrics.dataset == d]["method"].nunique() for d in datasets), default=1
    )
    nrow = max(len(datasets), 1)
    fig, axes = plt.subplots(
        nrow,
        1,
        figsize=(0.85 * len(order) + 4.0, 0.42 * n_methods * nrow + 1.7 * nrow),
        squeeze=False,
        layout="constrained",
    )
    mappable = None
    kinds = []
    for ax, ds in zip(axes.flat, datasets, strict=False):
        scaled = "scaled" in metrics and metrics.loc[metrics.dataset == ds, "scaled"].notna().any()
        wide = metric_matrix(metrics, ds, "scaled" if scaled else "value")
        # a data set's own metrics only (recall per label, RNA-label metrics: CITE-seq sets)
        present = metrics[metrics.dataset == ds].groupby("metric")["value"].count()
        wide = wide[[c for c in wide.columns if present.get(c, 0) > 0 or c in METRICS]]
        kinds.append("scaled" if scaled else "value")
        rank_of = {}
        if ranking is not None and len(ranking):
            sub = ranking[ranking["dataset"] == ds]
            ranked = list(sub["method"])
            rest = [m for m in wide.index if m not in ranked]
            wide = wide.reindex([m for m in ranked if m in wide.index] + rest)
            rank_of = {m: r for m, r in zip(sub["method"], sub["rank"], strict=True) if pd.notna(r)}
        annot = np.vectorize(lambda v: _fmt_value(v, ".2f"))(wide.to_numpy(dtype=float))
        sns.heatmap(
            wide.astype(float),
            ax=ax,
            vmin=0.0,
            vmax=1.0,
            cmap="viridis",
            annot=annot,
            fmt="",
            annot_kws={"fontsize": 8},
            linewidths=0.5,
            linecolor="white",
            cbar=False,
        )
        for i, j in zip(*np.where(wide.isna().to_numpy()), strict=True):
            ax.add_patch(
                Rectangle((j, i), 1, 1, facecolor="0.92", edgecolor="0.6", hatch="///", lw=0)
            )
            ax.text(j + 0.5, i + 0.5, "n/a", ha="center", va="center", fontsize=8, color="0.25")
        mappable = ax.collections[0]
        ax.set_title(
            f"{ds}: "
            + ("scaled scores (random 0, best positive control 1)" if scaled else "values"),
            fontsize=10,
        )
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.set_yticklabels(
            [
                (f"{rank_of[m]:g}. " if m in rank_of else "") + str(labels.get((ds, m), m))
                for m in wide.index
            ],
            rotation=0,
            fontsize=8,
        )
        ax.set_xticklabels(wide.columns, rotation=40, ha="right", fontsize=8)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.set_axis_off()
    if mappable is not None:
        what = "scaled score" if set(kinds) == {"scaled"} else "score"
        fig.colorbar(mappable, ax=axes, shrink=0.6, label=f"{what} (higher is better)")
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip("."))
    plt.close(fig)


def _status_text(ax, emb) -> bool:
    """A status record (timeout, out of memory, error...) is an empty panel saying so."""
    status = str(emb.uns.get("status", "ok"))
    if status == "ok":
        return False
    import textwrap

    message = str(emb.uns.get("status_message", status))
    ax.text(
        0.5,
        0.5,
        textwrap.fill(message, 28),
        ha="center",
        va="center",
        fontsize=8,
        color="0.3",
        transform=ax.transAxes,
    )
    ax.set_facecolor("0.95")
    return True


def _scatter(ax, emb, size_scale: float = 1.0):
    """Draw an embedding's cells coloured by label (random order, rasterised points); a status
    record gets its message instead of points."""
    import seaborn as sns

    labels = emb.obs["label"].astype("category")
    cats = list(labels.cat.categories)
    palette = sns.color_palette("tab20" if len(cats) > 10 else "tab10", len(cats))
    colors = np.asarray(palette)[labels.cat.codes.to_numpy()]
    xy = emb.obsm["X_emb"]
    size = float(np.clip(2000 / max(len(xy), 1), 0.05, 6)) * size_scale
    if _status_text(ax, emb):
        return cats, palette, xy
    order = np.random.default_rng(0).permutation(len(xy))
    ax.scatter(xy[order, 0], xy[order, 1], c=colors[order], s=size, linewidths=0, rasterized=True)
    return cats, palette, xy


MAX_LEGEND_LABELS = 30


def _legend_handles(emb, cats, palette):
    """Legend entries for the labels, the ``MAX_LEGEND_LABELS`` largest when there are more
    (e.g. hundreds of Leiden clusters on a big data set), with a last line counting the rest."""
    import matplotlib.pyplot as plt

    order = list(range(len(cats)))
    if len(cats) > MAX_LEGEND_LABELS:
        counts = emb.obs["label"].astype("category").cat.codes.value_counts()
        order = sorted(counts.index[:MAX_LEGEND_LABELS])
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=palette[k], label=str(cats[k])) for k in order
    ]
    if len(order) < len(cats):
        rest = len(cats) - len(order)
        handles.append(plt.Line2D([], [], ls="", label=f"+ {rest} smaller labels"))
    return handles


def embedding_panels(
    embeddings, outputs, metrics: pd.DataFrame | None = None, labels: dict | None = None
) -> None:
    """One PNG per embedding (``embeddings[i]`` -> ``outputs[i]``): the report's per-method items."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(embeddings) != len(outputs):
        raise ScdrbenchError(f"{len(embeddings)} embeddings but {len(outputs)} output paths")
    acc = {}
    if metrics is not None and len(metrics):
        sel = metrics[metrics["metric"] == "knn_accuracy"]
        acc = {(r.dataset, r.method): r.value for r in sel.itertuples()}
    for path, out in zip(embeddings, outputs, strict=True):
        ds, m = _ids_from_path(path)
        emb = embedding_file.read(path)
        fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
        cats, palette, xy = _scatter(ax, emb, size_scale=3.0)
        ax.set_xticks([])
        ax.set_yticks([])
        label = (labels or {}).get(m, emb.uns.get("method_label", m))
        title = f"{ds}: {label} ({len(xy):,} cells)"
        if np.isfinite(acc.get((ds, m), np.nan)):
            title += f", kNN acc {acc[(ds, m)]:.2f}"
        if keep.rerun_failure(path):
            title += "\n(previous result kept: its re-run failed, see timing.tsv)"
        ax.set_title(title, fontsize=10)
        handles = _legend_handles(emb, cats, palette)
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            fontsize=7,
            frameon=False,
            ncol=1 if len(handles) <= 14 else 2,
        )
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        log.info("wrote %s", out)


def comparison_figure(embeddings, timing: pd.DataFrame, metrics: pd.DataFrame | None, outputs):
    """Paper-style grid: a row per dataset, a column per method, cells coloured by label."""
    labels_of = (
        dict(zip(timing["method"], timing["method_label"])) if "method_label" in timing else {}
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
            emb = embedding_file.read(path)
            cats, palette, xy = _scatter(ax, emb)
            label = labels_of.get(m, emb.uns.get("method_label", m))
            s, fit = med.loc[(ds, m)] if (ds, m) in med.index else (np.nan, np.nan)
            title = f"{label}\njob {_fmt_seconds(s)}, fit {_fmt_seconds(fit)}"
            if (ds, m) in acc and not math.isnan(acc[(ds, m)]):
                title += f"\nkNN acc {acc[(ds, m)]:.2f}"
            if keep.rerun_failure(path):
                title += "\n(kept; re-run failed)"
            ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{ds}\n({len(xy):,} cells)", fontsize=9)
            if legend_handles is None:
                legend_handles = _legend_handles(emb, cats, palette)
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
