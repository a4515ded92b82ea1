"""The scaling figure: fit time, whole-job time and peak memory against the number of cells, one
line per method, with a power law fitted to each method's finished rungs (time ~ n^b,
memory ~ n^c) and extrapolated to the largest data set where the method did not get there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.io import atomic_path

ESSAY_N_CELLS = 1_306_127
#: A power law is fitted to the rungs of at least this many cells (smaller ones are dominated by
#: fixed costs: imports, compilation), or to all finished rungs when fewer than two are that big.
FIT_MIN_CELLS = 30_000
STATUS_MARK = {"timeout": "timeout", "out_of_memory": "OOM", "error": "error", "skipped": "skip"}


def scaling_table(timing: pd.DataFrame) -> pd.DataFrame:
    """Median over repeats per method and data set size (the scaling figure's points), with
    the job's status (``ok`` or how it ended)."""
    cols = ["fit_seconds", "s", "peak_rss_mb", "max_rss_mb"]
    if timing.empty:
        raise ScdrbenchError("the timing table has no rows: nothing to draw on the scaling figure")
    timing = timing.copy()
    if "status" not in timing:
        timing["status"] = "ok"
    keys = ["method", "method_label", "dataset", "n_cells"]
    med = timing.groupby(keys, sort=False)[cols].median().reset_index()
    status = timing.groupby(keys, sort=False)["status"].first().reset_index(drop=True)
    med["status"] = status.to_numpy()
    # methods in the order of the run (the registry's), each from its smallest data set up
    order = {m: i for i, m in enumerate(dict.fromkeys(timing["method"]))}
    med["_order"] = med["method"].map(order)
    return (
        med.sort_values(["_order", "n_cells"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def power_law(n, y, min_cells: int = FIT_MIN_CELLS) -> tuple[float, float, int]:
    """Least-squares fit of ``log y = log a + b log n``: returns ``(a, b, points used)``.

    Uses the points with ``n >= min_cells`` when there are at least two, else all of them;
    ``(nan, nan, k)`` with fewer than two usable points.
    """
    n = np.asarray(n, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0) & (n > 0)
    big = ok & (n >= min_cells)
    use = big if big.sum() >= 2 else ok
    if use.sum() < 2 or len(np.unique(n[use])) < 2:
        return float("nan"), float("nan"), int(use.sum())
    b, log_a = np.polyfit(np.log(n[use]), np.log(y[use]), 1)
    return float(np.exp(log_a)), float(b), int(use.sum())


def scaling_fits(med: pd.DataFrame, extrapolate_to: int | None = None) -> pd.DataFrame:
    """Per method: time ~ n^b (fit seconds), memory ~ n^c (kernel peak), from the finished rungs,
    and both extrapolated to ``extrapolate_to`` cells (default: the largest data set)."""
    target = extrapolate_to or int(med["n_cells"].max())
    rows = []
    for m, sub in med.groupby("method", sort=False):
        done = sub[sub["status"] == "ok"]
        a_t, b_t, k_t = power_law(done["n_cells"], done["fit_seconds"])
        a_m, c_m, k_m = power_law(done["n_cells"], done["peak_rss_mb"])
        at_target = sub[sub["n_cells"] == target]
        rows.append(
            {
                "method": m,
                "method_label": sub["method_label"].iloc[0],
                "largest_finished": int(done["n_cells"].max()) if len(done) else 0,
                "status_at_target": at_target["status"].iloc[0] if len(at_target) else "not run",
                "time_exponent_b": b_t,
                "memory_exponent_c": c_m,
                "points_time": k_t,
                "points_memory": k_m,
                "target_cells": target,
                "fit_seconds_at_target": a_t * target**b_t,
                "peak_rss_mb_at_target": a_m * target**c_m,
            }
        )
    return pd.DataFrame(rows)


def scaling_figure(
    timing: pd.DataFrame, outputs, *, essay: bool = True, extrapolate_to: int | None = None
) -> pd.DataFrame:
    """Fit time, whole-job time and peak memory against the number of cells, one line per method.

    Points are medians over repeats of the jobs that finished; a job that ended with another
    status (timeout, out of memory, error) is a cross at the time or memory it had reached,
    labelled. Each method's power law (:func:`scaling_fits`) is drawn dotted and, where the
    method did not finish the largest data set, extended to it with a hollow marker at the
    prediction; b (time) and c (memory) are printed in the legend. Stars mark the essay's run
    times at 1.3M cells (other hardware) when ``essay`` is true. Returns the fits.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from scdrbench.summary.tables import essay_runtimes

    med = scaling_table(timing)
    fits = scaling_fits(med, extrapolate_to).set_index("method")
    target = int(fits["target_cells"].iloc[0])
    stars = essay_runtimes().set_index("method")["essay_1m_seconds"].to_dict() if essay else {}
    methods = list(dict.fromkeys(med["method"]))
    colours = sns.color_palette("tab10" if len(methods) <= 10 else "tab20", len(methods))
    palette = dict(zip(methods, colours, strict=True))
    panels = [
        ("fit_seconds", "fit time (s, in-script)", "time_exponent_b", "fit_seconds_at_target"),
        ("s", "whole job (s, Snakemake benchmark)", None, None),
        ("peak_rss_mb", "peak RSS (MB, getrusage)", "memory_exponent_c", "peak_rss_mb_at_target"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    for ax, panel in zip(axes, panels, strict=True):
        for m in methods:
            _draw_method(ax, m, med, fits.loc[m], panel, target, palette[m], stars)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("cells")
        ax.set_ylabel(panel[1])
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = _legend(plt, axes, target, stars, methods)
    fig.legend(handles, labels, loc="outside right center", fontsize=7, frameon=False)
    fig.suptitle("time ~ n^b (fit), memory ~ n^c (peak RSS), fitted to finished rungs", fontsize=9)
    for out in outputs:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip("."))
    plt.close(fig)
    return fits.reset_index()


def _draw_method(ax, m, med, fit, panel, target, colour, stars) -> None:
    """One method's line of medians, its crosses for jobs that did not finish, its power law
    (dotted, dashed where extrapolated) and the essay's star on one panel."""
    col, _, exponent, predicted = panel
    sub = med[med["method"] == m]
    done = sub[sub["status"] == "ok"]
    y = done[col].to_numpy(dtype=float)
    ok = np.isfinite(y) & (y > 0)
    label = str(fit["method_label"])
    if np.isfinite(fit["time_exponent_b"]) or np.isfinite(fit["memory_exponent_c"]):
        label += f" (b={fit['time_exponent_b']:.2f}, c={fit['memory_exponent_c']:.2f})"
    ax.plot(
        done["n_cells"].to_numpy()[ok],
        y[ok],
        marker="o",
        ms=4,
        color=colour,
        label=label,
    )
    failed = sub[(sub["status"] != "ok") & (sub["status"] != "skipped")]
    yf = failed["s" if col != "peak_rss_mb" else "peak_rss_mb"].to_numpy(dtype=float)
    for n_f, y_f, st in zip(failed["n_cells"], yf, failed["status"], strict=True):
        if np.isfinite(y_f) and y_f > 0:
            ax.plot(n_f, y_f, marker="x", ms=8, mew=2, ls="", color=colour)
            ax.annotate(
                STATUS_MARK.get(st, st),
                (n_f, y_f),
                fontsize=6,
                color=colour,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if exponent and np.isfinite(fit[exponent]):
        a = fit[predicted] / target ** fit[exponent]
        lo = float(sub["n_cells"].min())
        hi = float(fit["largest_finished"]) or lo
        xs = np.geomspace(lo, hi, 20)
        ax.plot(xs, a * xs ** fit[exponent], ls=":", lw=1, color=colour)
        if hi < target:
            xs = np.geomspace(hi, target, 20)
            ax.plot(xs, a * xs ** fit[exponent], ls="--", lw=1, color=colour)
            ax.plot(
                target,
                fit[predicted],
                marker="o",
                ms=7,
                mfc="none",
                ls="",
                color=colour,
            )
    if col in ("fit_seconds", "s") and m in stars:
        # side by side where the essay gives the same time (t-SNE and UMAP: ~3 h)
        shift = 1.25 ** (list(stars).index(m) - 1)
        ax.plot(
            ESSAY_N_CELLS * shift,
            stars[m],
            marker="*",
            ms=11,
            ls="",
            color=colour,
            markeredgecolor="black",
            markeredgewidth=0.5,
        )


def _legend(plt, axes, target, stars, methods):
    """The methods' legend entries, then the markers' meaning."""
    handles, labels = axes[0].get_legend_handles_labels()
    extra = [
        (plt.Line2D([], [], ls="--", color="grey"), f"power law extrapolated to {target:,} cells"),
        (
            plt.Line2D([], [], marker="x", ls="", color="grey", mew=2),
            "ended by its budget / failed",
        ),
    ]
    if stars and any(m in stars for m in methods):
        extra.append(
            (
                plt.Line2D([], [], marker="*", ls="", color="grey", markeredgecolor="black", ms=11),
                "the essay, 1.3M cells\n(other hardware)",
            )
        )
    for h, lab in extra:
        handles.append(h)
        labels.append(lab)
    return handles, labels
