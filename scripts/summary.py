"""Summaries of the whole grid: tables (timing, metrics, ranking) and figures.

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

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scripts.common.errors import ScdrbenchError, cli_errors
from scripts.common.io import atomic_path, write_table, write_text
from scripts.common.runtime import setup_logging
from scripts.metrics import METRICS

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


def metric_order(metrics: pd.DataFrame) -> list[str]:
    """Metric ids present in the table: the scoring module's order, unknown ids after."""
    present = list(dict.fromkeys(metrics["metric"]))
    return [m for m in METRICS if m in present] + [m for m in present if m not in METRICS]


def metric_matrix(metrics: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """methods x metrics values of one dataset (methods in table order, NaN where missing)."""
    sub = metrics[metrics["dataset"] == dataset]
    dup = sub.duplicated(["method", "metric"])
    if dup.any():
        first = sub[dup].iloc[0]
        raise ScdrbenchError(
            f"metrics table has more than one row for {dataset}/{first['method']}/"
            f"{first['metric']}; each metric file must hold one row per metric"
        )
    wide = sub.set_index(["method", "metric"])["value"].astype(float).unstack("metric")
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
    timing table), left_out (the dataset's metrics left out, comma-separated).
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
        out = out.sort_values(["mean_rank", "method"], kind="stable", na_position="last")
        out.insert(1, "rank", out["mean_rank"].rank(method="min").astype("Int64").to_numpy())
        frames.append(out)
    if not frames:
        return pd.DataFrame(columns=["dataset", "rank", "method", "mean_rank"])
    return pd.concat(frames, ignore_index=True)


def _fmt_value(v: float, fmt: str = ".3f") -> str:
    return "n/a" if pd.isna(v) or not np.isfinite(v) else format(v, fmt)


METRICS_INTRO = (
    "One table per dataset; every metric is higher-is-better. n/a: not applicable or not "
    "scored (the reason is listed under the table)."
)
RANKING_INTRO = (
    "Per dataset, methods ordered by their mean rank across the metrics (1 = best on every "
    "metric). A metric that is n/a for every method of a dataset is left out of its ranking; a "
    "method with n/a on a metric ranks last on it. Job: median wall-clock time of the whole "
    "embedding job; fit: median time of the fit alone (timing.tsv)."
)

#: (heading, table of strings, lines under the table) per dataset
Section = tuple[str, pd.DataFrame, list[str]]


def metrics_sections(metrics: pd.DataFrame, timing: pd.DataFrame | None = None) -> list[Section]:
    """Per dataset: methods x metrics (formatted values), and the notes of the NaN values."""
    labels = _method_labels(timing)
    order = metric_order(metrics)
    sections = []
    for ds in dict.fromkeys(metrics["dataset"]):
        wide = metric_matrix(metrics, ds)
        table = pd.DataFrame(
            {"method": [labels.get((ds, m), m) for m in wide.index]}
            | {metric: [_fmt_value(v) for v in wide[metric]] for metric in order}
        )
        sub = metrics[(metrics["dataset"] == ds) & metrics["value"].isna()]
        notes = [
            f"{r.method} / {r.metric}: {r.note}"
            for r in sub.itertuples()
            if "note" in sub and isinstance(r.note, str) and r.note.strip()
        ]
        sections.append((ds, table, ["Not scored:", *notes] if notes else []))
    return sections


def ranking_sections(ranking: pd.DataFrame) -> list[Section]:
    """Per dataset: rank, method, mean rank, each metric's rank, job and fit times."""
    rank_cols = [c for c in ranking.columns if c.startswith("rank_")]
    sections = []
    for ds, sub in ranking.groupby("dataset", sort=False):
        table = pd.DataFrame(
            {
                "rank": [_fmt_value(v, "g") for v in sub["rank"]],
                "method": sub["method_label"].astype(str).to_list(),
                "mean rank": [_fmt_value(v, ".2f") for v in sub["mean_rank"]],
            }
            | {
                c.removeprefix("rank_"): [_fmt_value(v, "g") for v in sub[c]]
                for c in rank_cols
                if sub[c].notna().any()
            }
            | {
                "job": [_fmt_seconds(v) for v in sub["job_s"]],
                "fit": [_fmt_seconds(v) for v in sub["fit_s"]],
            }
        )
        left_out = sub["left_out"].iloc[0]
        foot = []
        if isinstance(left_out, str) and left_out:
            foot = [f"Left out (n/a for every method): {left_out.replace(',', ', ')}"]
        sections.append((ds, table, foot))
    return sections


def render_markdown(title: str, intro: str, sections: list[Section]) -> str:
    """Sections as markdown: a heading and a GitHub table per dataset."""
    parts = [f"# {title}", intro]
    for heading, table, foot in sections:
        parts.append(f"## {heading}\n\n" + table.to_markdown(index=False, disable_numparse=True))
        if foot:
            lines = [foot[0]] if foot[0].endswith(":") else []
            items = foot[1:] if lines else foot
            parts.append("\n\n".join(lines + ["\n".join(f"- {x}" for x in items)]))
    return "\n\n".join(p.strip() for p in parts) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th { background: #f3f3f3; } td:nth-child(2), th:nth-child(2) { text-align: left; }
.metrics td:first-child, .metrics th:first-child { text-align: left; }
p.intro { max-width: 60em; color: #444; } ul { color: #555; }
"""


def render_html(title: str, intro: str, sections: list[Section], css_class: str = "") -> str:
    """Sections as a stand-alone HTML page (shown inline by Snakemake's report)."""
    import html

    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="intro">{html.escape(intro)}</p>']
    for heading, table, foot in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        body.append(table.to_html(index=False, classes=css_class or None, border=0, na_rep="n/a"))
        if foot:
            head = foot[0] if foot[0].endswith(":") else ""
            items = foot[1:] if head else foot
            if head:
                body.append(f"<p>{html.escape(head)}</p>")
            body.append("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def metrics_markdown(metrics: pd.DataFrame, timing: pd.DataFrame | None = None) -> str:
    """One section per dataset: a methods x metrics table, then the notes of NaN values."""
    return render_markdown("Metrics", METRICS_INTRO, metrics_sections(metrics, timing))


def ranking_markdown(ranking: pd.DataFrame) -> str:
    """One section per dataset: the methods by mean rank, per-metric ranks and timings."""
    return render_markdown("Ranking", RANKING_INTRO, ranking_sections(ranking))


def metrics_heatmap(
    metrics: pd.DataFrame, ranking: pd.DataFrame | None, outputs, timing=None
) -> None:
    """methods x metrics heatmap, one panel per dataset; values annotated, NaN shown as n/a.

    Colour is the value itself on a fixed 0-1 scale (the same colour is the same number in every
    panel; negative silhouettes and CPDs show at the bottom of the scale, their value printed).
    Rows follow the ranking when one is given (best first).
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
    for ax, ds in zip(axes.flat, datasets, strict=False):
        wide = metric_matrix(metrics, ds)
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
        ax.set_title(ds, fontsize=10)
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
        fig.colorbar(mappable, ax=axes, shrink=0.6, label="value (higher is better)")
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip("."))
    plt.close(fig)


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


def _scatter(ax, emb, size_scale: float = 1.0):
    """Draw an embedding's cells coloured by label (random order, rasterised points)."""
    import seaborn as sns

    labels = emb.obs["label"].astype("category")
    cats = list(labels.cat.categories)
    palette = sns.color_palette("tab20" if len(cats) > 10 else "tab10", len(cats))
    colors = np.asarray(palette)[labels.cat.codes.to_numpy()]
    xy = emb.obsm["X_emb"]
    size = float(np.clip(2000 / max(len(xy), 1), 0.05, 6)) * size_scale
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


def embedding_panels(embeddings, outputs, metrics: pd.DataFrame | None = None) -> None:
    """One PNG per embedding (``embeddings[i]`` -> ``outputs[i]``): the report's per-method items."""
    import anndata as ad
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
        emb = ad.read_h5ad(path)
        fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
        cats, palette, xy = _scatter(ax, emb, size_scale=3.0)
        ax.set_xticks([])
        ax.set_yticks([])
        title = f"{ds}: {emb.uns.get('method_label', m)} ({len(xy):,} cells)"
        if np.isfinite(acc.get((ds, m), np.nan)):
            title += f", kNN acc {acc[(ds, m)]:.2f}"
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
    import anndata as ad
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
            emb = ad.read_h5ad(path)
            cats, palette, xy = _scatter(ax, emb)
            label = emb.uns.get("method_label", m)
            s, fit = med.loc[(ds, m)] if (ds, m) in med.index else (np.nan, np.nan)
            title = f"{label}\njob {_fmt_seconds(s)}, fit {_fmt_seconds(fit)}"
            if (ds, m) in acc and not math.isnan(acc[(ds, m)]):
                title += f"\nkNN acc {acc[(ds, m)]:.2f}"
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


# The essay's reported run times on the 1.3M mouse brain cells (other hardware: a cluster node
# with 256 GB for FIt-SNE), drawn as reference marks on the scaling figure, keyed by method id.
ESSAY_RUNTIMES_1M = {"tsne": 3 * 3600.0, "umap": 3 * 3600.0, "scvis": 6 * 3600.0}
ESSAY_N_CELLS = 1_306_127


def scaling_table(timing: pd.DataFrame) -> pd.DataFrame:
    """Median over repeats per method and data set size (the scaling figure's points)."""
    cols = ["fit_seconds", "s", "peak_rss_mb", "max_rss_mb"]
    if timing.empty:
        raise ScdrbenchError("the timing table has no rows: nothing to draw on the scaling figure")
    med = (
        timing.groupby(["method", "method_label", "dataset", "n_cells"], sort=False)[cols]
        .median()
        .reset_index()
    )
    # methods in the order of the run (the registry's), each from its smallest data set up
    order = {m: i for i, m in enumerate(dict.fromkeys(timing["method"]))}
    med["_order"] = med["method"].map(order)
    return (
        med.sort_values(["_order", "n_cells"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def scaling_figure(timing: pd.DataFrame, outputs, *, essay: bool = True) -> None:
    """Fit time, whole-job time and peak memory against the number of cells, one line per method.

    Points are medians over repeats; a line joins a method's data sets in order of size (the
    scaling ladder: subsamples of one data set, or different data sets). Stars mark the essay's
    run times at 1.3M cells for the methods it timed (other hardware), when ``essay`` is true.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    med = scaling_table(timing)
    methods = list(dict.fromkeys(med["method"]))
    colours = sns.color_palette("tab10" if len(methods) <= 10 else "tab20", len(methods))
    palette = dict(zip(methods, colours, strict=True))
    panels = [
        ("fit_seconds", "fit time (s, in-script)"),
        ("s", "whole job (s, Snakemake benchmark)"),
        ("peak_rss_mb", "peak RSS (MB, getrusage)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
    for ax, (col, ylabel) in zip(axes, panels, strict=True):
        for m in methods:
            sub = med[med["method"] == m]
            y = sub[col].to_numpy(dtype=float)
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            ax.plot(
                sub["n_cells"].to_numpy()[ok],
                y[ok],
                marker="o",
                ms=4,
                color=palette[m],
                label=sub["method_label"].iloc[0],
            )
            if essay and col in ("fit_seconds", "s") and m in ESSAY_RUNTIMES_1M:
                # side by side where the essay gives the same time (t-SNE and UMAP: ~3 h)
                shift = 1.25 ** (list(ESSAY_RUNTIMES_1M).index(m) - 1)
                ax.plot(
                    ESSAY_N_CELLS * shift,
                    ESSAY_RUNTIMES_1M[m],
                    marker="*",
                    ms=11,
                    ls="",
                    color=palette[m],
                    markeredgecolor="black",
                    markeredgewidth=0.5,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cells")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if essay and any(m in ESSAY_RUNTIMES_1M for m in methods):
        handles.append(
            plt.Line2D([], [], marker="*", ls="", color="grey", markeredgecolor="black", ms=11)
        )
        labels.append("the essay, 1.3M cells\n(other hardware)")
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip("."))
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
    m.add_argument("--html")
    f = sub.add_parser("figure")
    f.add_argument("--embeddings", nargs="+", required=True)
    f.add_argument("--timing", required=True)
    f.add_argument("--metrics")
    f.add_argument("--outputs", nargs="+", required=True)
    r = sub.add_parser("ranking")
    r.add_argument("--metrics", required=True)
    r.add_argument("--timing")
    r.add_argument("--tsv", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--html")
    h = sub.add_parser("heatmap")
    h.add_argument("--metrics", required=True)
    h.add_argument("--ranking")
    h.add_argument("--timing")
    h.add_argument("--outputs", nargs="+", required=True)
    e = sub.add_parser("panels")
    e.add_argument("--embeddings", nargs="+", required=True)
    e.add_argument("--metrics")
    e.add_argument("--outputs", nargs="+", required=True)
    sc_ = sub.add_parser("scaling")
    sc_.add_argument("--timing", required=True)
    sc_.add_argument("--outputs", nargs="+", required=True)
    for sp_ in (t, m, f, r, h, e, sc_):
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
        write_text(metrics_markdown(df), a.md)
        if a.html:
            write_text(
                render_html("Metrics", METRICS_INTRO, metrics_sections(df), "metrics"), a.html
            )
        log.info("metrics table: %d rows", len(df))
    elif a.command == "ranking":
        metrics = pd.read_csv(a.metrics, sep="\t")
        timing = pd.read_csv(a.timing, sep="\t") if a.timing else None
        df = ranking_table(metrics, timing)
        write_table(df, a.tsv)
        write_text(ranking_markdown(df), a.md)
        if a.html:
            write_text(render_html("Ranking", RANKING_INTRO, ranking_sections(df)), a.html)
        log.info("ranking: %d rows over %d datasets", len(df), df["dataset"].nunique())
    elif a.command == "heatmap":
        metrics = pd.read_csv(a.metrics, sep="\t")
        ranking = pd.read_csv(a.ranking, sep="\t") if a.ranking else None
        timing = pd.read_csv(a.timing, sep="\t") if a.timing else None
        metrics_heatmap(metrics, ranking, a.outputs, timing=timing)
        log.info("wrote %s", ", ".join(a.outputs))
    elif a.command == "scaling":
        scaling_figure(pd.read_csv(a.timing, sep="\t"), a.outputs)
        log.info("wrote %s", ", ".join(a.outputs))
    elif a.command == "panels":
        metrics = pd.read_csv(a.metrics, sep="\t") if a.metrics else None
        embedding_panels(a.embeddings, a.outputs, metrics)
    else:
        timing = pd.read_csv(a.timing, sep="\t")
        metrics = pd.read_csv(a.metrics, sep="\t") if a.metrics else None
        comparison_figure(a.embeddings, timing, metrics, a.outputs)
        log.info("wrote %s", ", ".join(a.outputs))


if __name__ == "__main__":
    cli()
