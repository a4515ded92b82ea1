"""Figures: the paper-style comparison grid, one panel per embedding, the metrics heatmap and
the scaling figure (time and memory against cells, with fitted power laws)."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from scdrbench.common import embedding_file, keep
from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.io import atomic_path
from scdrbench.metrics.registry import METRICS
from scdrbench.summary.tables import (
    _fmt_seconds,
    _fmt_value,
    _ids_from_path,
    _method_labels,
    metric_matrix,
    metric_order,
)

log = logging.getLogger("scdrbench.summary")


def _panel_matrix(metrics: pd.DataFrame, ranking: pd.DataFrame | None, ds: str):
    """One data set's methods x metrics matrix for :func:`metrics_heatmap`: ``(matrix, whether
    it holds scaled scores, {method: rank})``, rows in ranking order when there is one."""
    scaled = "scaled" in metrics and metrics.loc[metrics.dataset == ds, "scaled"].notna().any()
    wide = metric_matrix(metrics, ds, "scaled" if scaled else "value")
    # a data set's own metrics only (recall per label, RNA-label metrics: CITE-seq sets)
    present = metrics[metrics.dataset == ds].groupby("metric")["value"].count()
    wide = wide[[c for c in wide.columns if present.get(c, 0) > 0 or c in METRICS]]
    rank_of = {}
    if ranking is not None and len(ranking):
        sub = ranking[ranking["dataset"] == ds]
        ranked = list(sub["method"])
        rest = [m for m in wide.index if m not in ranked]
        wide = wide.reindex([m for m in ranked if m in wide.index] + rest)
        rank_of = {m: r for m, r in zip(sub["method"], sub["rank"], strict=True) if pd.notna(r)}
    return wide, scaled, rank_of


def _mark_missing(ax, wide: pd.DataFrame) -> None:
    """Hatch the heatmap's NaN cells and write n/a in them."""
    from matplotlib.patches import Rectangle

    for i, j in zip(*np.where(wide.isna().to_numpy()), strict=True):
        ax.add_patch(Rectangle((j, i), 1, 1, facecolor="0.92", edgecolor="0.6", hatch="///", lw=0))
        ax.text(j + 0.5, i + 0.5, "n/a", ha="center", va="center", fontsize=8, color="0.25")


def metrics_heatmap(
    metrics: pd.DataFrame, ranking: pd.DataFrame | None, outputs, timing=None
) -> None:
    """methods x metrics heatmap, one panel per dataset; scores annotated, NaN shown as n/a.

    A data set with controls shows the *scaled* scores (``scaled``: the negative control at 0,
    the best positive control at 1; :func:`scdrbench.summary.tables.scale`), one without shows the
    raw values. Colour is on a fixed 0-1 scale either way (the same colour is the same number in
    every panel; scores below 0 or above 1 take the end colours, their number printed). Rows
    follow the ranking when one is given (best first).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

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
        wide, scaled, rank_of = _panel_matrix(metrics, ranking, ds)
        kinds.append("scaled" if scaled else "value")
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
        _mark_missing(ax, wide)
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


def status_panel(ax, message: str) -> None:
    """An empty panel that says why it is empty (a failed or over-budget job)."""
    import textwrap

    ax.text(
        0.5,
        0.5,
        # a config key or path stays on one line, whole
        textwrap.fill(str(message), 28, break_long_words=False, break_on_hyphens=False),
        ha="center",
        va="center",
        fontsize=8,
        color="0.3",
        transform=ax.transAxes,
    )
    ax.set_facecolor("0.95")


def _status_text(ax, emb) -> bool:
    """A status record (timeout, out of memory, error...) is an empty panel saying so."""
    status = str(emb.uns.get("status", "ok"))
    if status == "ok":
        return False
    status_panel(ax, emb.uns.get("status_message", status))
    return True


def label_palette(n: int) -> list:
    """``n`` distinct colours: tab10, tab20 up to 20 labels, then tab20, tab20b and tab20c
    (60), then evenly spaced hues; a palette never repeats a colour (seaborn's tab20 for 23
    Leiden clusters would give three pairs of clusters one colour)."""
    import seaborn as sns

    if n <= 20:
        return sns.color_palette("tab20" if n > 10 else "tab10", n)
    if n <= 60:
        return [c for name in ("tab20", "tab20b", "tab20c") for c in sns.color_palette(name)][:n]
    return sns.color_palette("husl", n)


def natural_key(label) -> list:
    """Sort key that puts leiden_2 before leiden_10 (digits compared as numbers)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(label))]


def _scatter(ax, emb, size_scale: float = 1.0):
    """Draw an embedding's cells coloured by label (random order, rasterised points); a status
    record gets its message instead of points."""
    labels = emb.obs["label"].astype("category")
    cats = list(labels.cat.categories)
    palette = label_palette(len(cats))
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
        order = list(counts.index[:MAX_LEGEND_LABELS])
    order = sorted(order, key=lambda k: natural_key(cats[k]))
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


#: The comparison and the stability figure share one layout: a block per data set (its title
#: row, then its panels wrapped into rows of at most ``MAX_COLUMNS``), each panel ``PANEL_SIZE``
#: inches with its title, the labels' legend at the block's right, saved at ``FIGURE_DPI``.
#: Eighteen methods: 6 x 2.2 + 2.6 = 15.8 inches, 2,370 pixels wide, readable at 100%.
MAX_COLUMNS = 6
PANEL_SIZE = (2.2, 2.75)
LEGEND_WIDTH = 2.6
BLOCK_TITLE_HEIGHT = 0.4
FIGURE_DPI = 150
#: characters of a method label on one line of a panel title (8 pt), at most two lines
TITLE_WIDTH = 30


def panel_title(label, *lines: str) -> str:
    """A method label wrapped to a panel's width (two lines at most), then ``lines``."""
    import textwrap

    wrapped = textwrap.wrap(str(label), TITLE_WIDTH, max_lines=2, placeholder=" ...")
    return "\n".join([*(wrapped or [""]), *lines])


def panel_blocks(blocks):
    """A figure with one block per data set, ``blocks`` being ``[(title, n_panels)]``.

    Returns the figure and, per block, ``(subfigure, axes)``: its ``n_panels`` axes row by row
    (no ticks; the grid's unused cells are off). Every block has the same number of columns,
    at most ``MAX_COLUMNS``, so a method keeps its place from one block to the next.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = list(blocks) or [("", 0)]
    ncol = max(1, min(MAX_COLUMNS, max(n for _, n in blocks)))
    rows = [max(1, math.ceil(n / ncol)) for _, n in blocks]
    heights = [r * PANEL_SIZE[1] + BLOCK_TITLE_HEIGHT for r in rows]
    fig = plt.figure(
        figsize=(ncol * PANEL_SIZE[0] + LEGEND_WIDTH, sum(heights)), layout="constrained"
    )
    subfigs = fig.subfigures(len(blocks), 1, height_ratios=heights, squeeze=False).flat
    out = []
    for sf, (title, n), r in zip(subfigs, blocks, rows, strict=True):
        axes = list(sf.subplots(r, ncol, squeeze=False).flat)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[n:]:
            ax.set_axis_off()
        if title:
            sf.suptitle(title, fontsize=11, fontweight="bold", x=0.0, ha="left")
        out.append((sf, axes[:n]))
    return fig, out


def block_legend(subfig, handles, markerscale: float = 0.8) -> None:
    """The legend at the right of a data set's block."""
    subfig.legend(
        handles=handles,
        loc="outside right center",
        fontsize=7,
        frameon=False,
        markerscale=markerscale,
        ncol=1 if len(handles) <= 14 else 2,
    )


def save_figure(fig, outputs) -> None:
    """Write ``fig`` to every output (format from the suffix) at ``FIGURE_DPI``, atomically."""
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=FIGURE_DPI, format=Path(out).suffix.lstrip("."))


def draw_comparison(embeddings, timing: pd.DataFrame, metrics: pd.DataFrame | None):
    """The paper-style comparison (the figure, unsaved): a block per data set, a panel per
    method (wrapped into rows, :func:`panel_blocks`), cells coloured by label; each panel axis
    has the ``gid`` ``dataset/method``."""
    labels_of = (
        dict(zip(timing["method"], timing["method_label"])) if "method_label" in timing else {}
    )
    by_key = {_ids_from_path(p): p for p in embeddings}
    datasets = list(dict.fromkeys(k[0] for k in by_key))
    methods = list(dict.fromkeys(k[1] for k in by_key))
    fig, blocks = panel_blocks([(ds, len(methods)) for ds in datasets])
    med = timing.groupby(["dataset", "method"])[["s", "fit_seconds"]].median()
    acc = {}
    if metrics is not None and len(metrics):
        sel = metrics[metrics["metric"] == "knn_accuracy"]
        acc = {(r.dataset, r.method): r.value for r in sel.itertuples()}
    for ds, (subfig, axes) in zip(datasets, blocks, strict=False):
        legend_handles = None
        for ax, m in zip(axes, methods, strict=True):
            path = by_key.get((ds, m))
            if path is None:
                ax.set_axis_off()
                continue
            ax.set_gid(f"{ds}/{m}")
            emb = embedding_file.read(path)
            cats, palette, xy = _scatter(ax, emb)
            label = labels_of.get(m, emb.uns.get("method_label", m))
            s, fit = med.loc[(ds, m)] if (ds, m) in med.index else (np.nan, np.nan)
            lines = [f"job {_fmt_seconds(s)}, fit {_fmt_seconds(fit)}"]
            if (ds, m) in acc and not math.isnan(acc[(ds, m)]):
                lines.append(f"kNN acc {acc[(ds, m)]:.2f}")
            if keep.rerun_failure(path):
                lines.append("(kept; re-run failed)")
            ax.set_title(panel_title(label, *lines), fontsize=8)
            if legend_handles is None:
                legend_handles = _legend_handles(emb, cats, palette)
                subfig.suptitle(
                    f"{ds} ({len(xy):,} cells)", fontsize=11, fontweight="bold", x=0.0, ha="left"
                )
        if legend_handles:
            block_legend(subfig, legend_handles)
    return fig


def comparison_figure(embeddings, timing: pd.DataFrame, metrics: pd.DataFrame | None, outputs):
    """Draw the comparison (:func:`draw_comparison`) and write it to every output."""
    import matplotlib.pyplot as plt

    fig = draw_comparison(embeddings, timing, metrics)
    save_figure(fig, outputs)
    plt.close(fig)
