"""The essay's claims, checked against this run's tables: ``results/tables/findings.md``.

Each claim is a rule over ``metrics.tsv`` and ``timing.tsv`` of one data set, giving a verdict
(*holds*, *does not hold*, or *not measured* when a method it needs was not run or failed)
with the numbers and the table rows behind it. Nothing in the text is written by hand: change a
table and the verdict follows.

1. PCA fails to resolve the populations: PCA's kNN accuracy is at least ``MARGIN`` below both
   t-SNE's and UMAP's.
2. Non-linear methods resolve them: t-SNE and UMAP both reach ``RESOLVED`` of the positive
   control's (``true_features``, the unreduced input) kNN accuracy, or ``RESOLVED_ABS`` without
   the control.
3. Autoencoders match t-SNE/UMAP: each autoencoder run (``ae_keras``, ``ae_tf``) is within
   ``MARGIN`` of the better of t-SNE and UMAP on kNN accuracy.
4. t-SNE at high perplexity keeps more global structure: ``tsne_p350`` (or its lean variant)
   beats ``tsne`` on both KNC and CPD.
5. The autoencoder is the fastest at scale: on the largest data set run, an autoencoder's
   median fit time is below that of every other method that is not a control or PCA.

**At scale** (:func:`at_scale`, the section "At scale" of findings.md): claims 4 and 5 are
decided once more, each on the largest run that has its methods, among this run's data sets
and, when given (config ``findings.ladder``, the summary's ``--ladder``), the rungs of the
scaling ladder's table (``benchmarks/results/ladder.tsv``, one run per rung and proxy version):
the autoencoder-speed claim on the largest run where an autoencoder and another non-control
method finished, the high-perplexity claim on the largest run with ``tsne`` and a global
variant (``HIGH_PERPLEXITY``) both scored on KNC and CPD. The evidence quotes each number and
its source (table, data set or rung), and names the methods that did not finish there.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MARGIN = 0.05
RESOLVED = 0.9
RESOLVED_ABS = 0.8
CONTROLS = ("random", "true_features", "spectral", "pca")
AUTOENCODERS = ("ae_keras", "ae_tf")
#: t-SNE variants for global structure, in the order a verdict prefers them.
HIGH_PERPLEXITY = ("tsne_p350", "tsne_p350_lean", "tsne_exag")

HOLDS, FAILS, UNKNOWN = "holds", "does not hold", "not measured"


def _value(metrics: pd.DataFrame, ds: str, method: str, metric: str) -> float:
    sel = metrics[
        (metrics["dataset"] == ds) & (metrics["method"] == method) & (metrics["metric"] == metric)
    ]
    return float(sel["value"].iloc[0]) if len(sel) and pd.notna(sel["value"].iloc[0]) else np.nan


def _row(ds, method, metric, value) -> str:
    return f"`metrics.tsv`: {ds} / {method} / {metric} = {value:.3f}"


def pca_fails(metrics, timing, ds):
    pca = _value(metrics, ds, "pca", "knn_accuracy")
    others = {m: _value(metrics, ds, m, "knn_accuracy") for m in ("tsne", "umap")}
    rows = [_row(ds, "pca", "knn_accuracy", pca)] + [
        _row(ds, m, "knn_accuracy", v) for m, v in others.items()
    ]
    if not np.isfinite(pca) or not all(np.isfinite(v) for v in others.values()):
        return UNKNOWN, rows
    ok = all(pca <= v - MARGIN for v in others.values())
    return (HOLDS if ok else FAILS), rows


def nonlinear_resolves(metrics, timing, ds):
    values = {m: _value(metrics, ds, m, "knn_accuracy") for m in ("tsne", "umap")}
    control = _value(metrics, ds, "true_features", "knn_accuracy")
    rows = [_row(ds, m, "knn_accuracy", v) for m, v in values.items()]
    if not all(np.isfinite(v) for v in values.values()):
        return UNKNOWN, rows
    if np.isfinite(control):
        rows.append(_row(ds, "true_features", "knn_accuracy", control))
        bar = RESOLVED * control
    else:
        bar = RESOLVED_ABS
    rows.append(f"bar: {bar:.3f}")
    return (HOLDS if all(v >= bar for v in values.values()) else FAILS), rows


def autoencoders_match(metrics, timing, ds):
    found = [_value(metrics, ds, m, "knn_accuracy") for m in ("tsne", "umap")]
    found = [v for v in found if np.isfinite(v)]
    best = max(found) if found else np.nan
    aes = {m: _value(metrics, ds, m, "knn_accuracy") for m in AUTOENCODERS}
    aes = {m: v for m, v in aes.items() if np.isfinite(v)}
    rows = [_row(ds, m, "knn_accuracy", v) for m, v in aes.items()]
    if not aes or not np.isfinite(best):
        return UNKNOWN, rows
    rows.append(f"best of t-SNE and UMAP: {best:.3f}")
    return (HOLDS if all(v >= best - MARGIN for v in aes.values()) else FAILS), rows


def high_perplexity_global(metrics, timing, ds):
    base = {k: _value(metrics, ds, "tsne", k) for k in ("knc", "cpd")}
    for variant in HIGH_PERPLEXITY:
        high = {k: _value(metrics, ds, variant, k) for k in ("knc", "cpd")}
        if all(np.isfinite(v) for v in (*base.values(), *high.values())):
            rows = [
                _row(ds, m, k, v)
                for m, d in (("tsne", base), (variant, high))
                for k, v in d.items()
            ]
            ok = all(high[k] > base[k] for k in base)
            return (HOLDS if ok else FAILS), rows
    return UNKNOWN, [_row(ds, "tsne", k, v) for k, v in base.items()]


def autoencoder_fastest(metrics, timing, ds):
    if timing is None or timing.empty:
        return UNKNOWN, []
    ok_rows = timing[timing["status"] == "ok"] if "status" in timing.columns else timing
    largest = int(ok_rows["n_cells"].max()) if len(ok_rows) else 0
    if int(timing.loc[timing["dataset"] == ds, "n_cells"].max()) != largest:
        return UNKNOWN, [f"checked on the largest data set run ({largest:,} cells), not {ds}"]
    sub = ok_rows[ok_rows["dataset"] == ds]
    fit = sub.groupby("method")["fit_seconds"].median()
    aes = fit[[m for m in AUTOENCODERS if m in fit.index]]
    others = fit[[m for m in fit.index if m not in AUTOENCODERS and m not in CONTROLS]]
    rows = [
        f"`timing.tsv`: {ds} / {m} / fit_seconds (median) = {v:.1f}"
        for m, v in fit.items()
        if m in aes.index or m in others.index
    ]
    if aes.empty or others.empty:
        return UNKNOWN, rows
    return (HOLDS if aes.min() < others.min() else FAILS), rows


CLAIMS = (
    ("PCA fails to resolve the populations", pca_fails),
    ("Non-linear methods (t-SNE, UMAP) resolve them", nonlinear_resolves),
    ("Autoencoders match t-SNE/UMAP", autoencoders_match),
    ("t-SNE at high perplexity keeps more global structure", high_perplexity_global),
    ("The autoencoder is the fastest at scale", autoencoder_fastest),
)


#: After an evidence row whose number comes from a result kept through a failed re-run.
KEPT_MARK = " (a kept result: its re-run failed)"
_EVIDENCE_METHOD = re.compile(r"^`(?:metrics|timing)\.tsv`: [^/]+ / ([^/]+?) / ")


def _kept(metrics: pd.DataFrame, timing: pd.DataFrame | None, ds: str) -> set[str]:
    """Methods of ``ds`` whose scores (metrics.tsv ``kept``) or timings (timing.tsv
    ``status_message``) come from a result kept through a failed re-run."""
    from scdrbench.summary.tables import kept_methods

    kept = set(kept_methods(metrics, ds))
    if timing is not None and len(timing) and "status_message" in timing:
        sub = timing[timing["dataset"] == ds]
        marked = sub["status_message"].astype(str).str.startswith("kept the result of ")
        kept |= set(sub.loc[marked, "method"])
    return kept


def findings(metrics: pd.DataFrame, timing: pd.DataFrame | None) -> pd.DataFrame:
    """``dataset, claim, verdict, evidence, kept`` for every data set and claim; ``kept`` names
    the methods whose numbers behind the verdict come from a kept result (comma-separated)."""
    rows = []
    for ds in dict.fromkeys(metrics["dataset"]):
        kept = _kept(metrics, timing, ds)
        for claim, rule in CLAIMS:
            verdict, evidence = rule(metrics, timing, ds)
            used = []
            for i, row in enumerate(evidence):
                hit = _EVIDENCE_METHOD.match(row)
                if hit and hit.group(1) in kept:
                    evidence[i] = row + KEPT_MARK
                    used.append(hit.group(1))
            rows.append(
                {
                    "dataset": ds,
                    "claim": claim,
                    "verdict": verdict,
                    "evidence": "; ".join(evidence),
                    "kept": ",".join(dict.fromkeys(used)),
                }
            )
    return pd.DataFrame(rows, columns=["dataset", "claim", "verdict", "evidence", "kept"])


def findings_markdown(table: pd.DataFrame) -> str:
    """The verdicts per data set, each with its numbers."""
    parts = [
        "# Findings: the essay's claims, checked against this run",
        "Generated from `metrics.tsv` and `timing.tsv` by `src/scdrbench/summary/findings.py` "
        f"(rules and thresholds in its docstring: margin {MARGIN}, resolved at {RESOLVED:.0%} "
        "of the unreduced input's kNN accuracy). *not measured*: a method the claim needs was "
        "not run or did not finish.",
    ]
    for ds, sub in table.groupby("dataset", sort=False):
        lines = [f"## {ds}"]
        for r in sub.itertuples():
            kept = getattr(r, "kept", "")
            also = f" *From kept results ({kept}): their re-run failed.*" if kept else ""
            lines.append(f"- **{r.claim}: {r.verdict}.**{also} {r.evidence}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --- at scale: each claim on the largest run that has its methods ------------------------


def runs_of_this_run(metrics: pd.DataFrame, timing: pd.DataFrame | None) -> pd.DataFrame:
    """This run's data sets as runs: ``source, run, n_cells, method, status, fit_seconds, knc,
    cpd`` (median fit over repeats; scores from metrics.tsv)."""
    cols = ["source", "run", "n_cells", "method", "status", "fit_seconds", "knc", "cpd"]
    if timing is None or timing.empty:
        return pd.DataFrame(columns=cols)
    t = timing.copy()
    if "status" not in t:
        t["status"] = "ok"
    t = t.groupby(["dataset", "method"], sort=False).agg(
        n_cells=("n_cells", "max"),
        status=("status", "first"),
        fit_seconds=("fit_seconds", "median"),
    )
    scores = metrics[metrics["metric"].isin(["knc", "cpd"])].pivot_table(
        index=["dataset", "method"], columns="metric", values="value", aggfunc="first"
    )
    t = t.join(scores.reindex(columns=["knc", "cpd"]), how="outer").reset_index()
    t["source"] = "this run (`timing.tsv`, `metrics.tsv`)"
    return t.rename(columns={"dataset": "run"})[cols]


def read_ladder(path) -> pd.DataFrame:
    """The ladder's table (``benchmarks/results/ladder.tsv``) as runs: one per rung and proxy
    version, same columns as :func:`runs_of_this_run`."""
    from pathlib import Path

    from scdrbench.common.errors import ScdrbenchError
    from scdrbench.common.io import read_table

    if not Path(path).is_file():
        raise ScdrbenchError(
            f"config key 'findings.ladder': the ladder table {path} does not exist; make it with "
            "`make ladder`, or remove the key"
        )
    needed = ["method", "rung", "status", "fit_s"]
    lad = read_table(path, what="ladder table", columns=needed, comment="#")
    version = lad["proxy_version"] if "proxy_version" in lad else pd.Series("", index=lad.index)
    return pd.DataFrame(
        {
            "source": f"the ladder (`{path}`)",
            "run": [f"rung {int(r):,}, proxy v{v}" for r, v in zip(lad["rung"], version)],
            "n_cells": lad["rung"].astype(int),
            "method": lad["method"],
            "status": lad["status"].fillna("").astype(str),
            "fit_seconds": pd.to_numeric(lad["fit_s"], errors="coerce"),
            "knc": pd.to_numeric(lad.get("knc"), errors="coerce"),
            "cpd": pd.to_numeric(lad.get("cpd"), errors="coerce"),
        }
    )


def _largest(runs: pd.DataFrame, has) -> tuple[pd.DataFrame, str] | tuple[None, None]:
    """The rows of the largest run for which ``has(rows)`` holds. Ties in cells: this run first,
    then the run with the most finished methods (the ladder's 1.3M rung of the proxy version that
    ran every method, not an earlier version's with a few), then the first."""
    best, best_key = None, None
    for (source, run), rows in runs.groupby(["source", "run"], sort=False):
        if not has(rows):
            continue
        this_run = not str(source).startswith("the ladder")
        key = (rows["n_cells"].max(), this_run, len(_finished(rows)))
        if best_key is None or key > best_key:
            best, best_key = (rows, f"{run} ({int(rows['n_cells'].max()):,} cells), {source}"), key
    return best if best else (None, None)


def _finished(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[(rows["status"] == "ok") & rows["fit_seconds"].notna()]


def speed_at_scale(runs: pd.DataFrame):
    def has(rows):
        ok = _finished(rows)["method"]
        return ok.isin(AUTOENCODERS).any() and (~ok.isin((*AUTOENCODERS, *CONTROLS))).any()

    rows, where = _largest(runs, has)
    if rows is None:
        return UNKNOWN, "no run has an autoencoder and another method both finished"
    ok = _finished(rows).set_index("method")["fit_seconds"]
    aes = ok[ok.index.isin(AUTOENCODERS)]
    others = ok[~ok.index.isin((*AUTOENCODERS, *CONTROLS))]
    evidence = [f"decided on {where}"]
    evidence += [f"{m} fit {v:,.1f} s" for m, v in ok.sort_values().items() if m not in CONTROLS]
    stopped = rows[(rows["status"] != "ok") & ~rows["method"].isin(CONTROLS)]
    evidence += [f"{r.method}: {r.status}" for r in stopped.itertuples()]
    return (HOLDS if aes.min() < others.min() else FAILS), "; ".join(evidence)


def global_at_scale(runs: pd.DataFrame):
    def scored(rows, method):
        sel = rows[rows["method"] == method]
        return len(sel) and sel[["knc", "cpd"]].notna().all(axis=None)

    def has(rows):
        return scored(rows, "tsne") and any(scored(rows, v) for v in HIGH_PERPLEXITY)

    rows, where = _largest(runs, has)
    if rows is None:
        return UNKNOWN, "no run has tsne and a high-perplexity variant both scored on KNC and CPD"
    by = rows.set_index("method")
    present = [v for v in HIGH_PERPLEXITY if scored(rows, v)]
    evidence = [f"decided on {where}"] + [
        f"{m}: KNC {by.at[m, 'knc']:.3f}, CPD {by.at[m, 'cpd']:.3f}" for m in ("tsne", *present)
    ]
    first = present[0]
    ok = all(by.at[first, k] > by.at["tsne", k] for k in ("knc", "cpd"))
    return (HOLDS if ok else FAILS), "; ".join(evidence + [f"verdict on {first}"])


def at_scale(metrics: pd.DataFrame, timing: pd.DataFrame | None, ladder=None) -> pd.DataFrame:
    """``claim, verdict, evidence`` of claims 4 and 5, each on the largest run with its methods
    (this run's data sets and, when given, the ladder table's rungs)."""
    runs = runs_of_this_run(metrics, timing)
    if ladder is not None:
        parts = [r for r in (runs, read_ladder(ladder)) if len(r)]
        runs = pd.concat(parts, ignore_index=True)
    rows = []
    for claim, rule in (
        ("t-SNE at high perplexity keeps more global structure", global_at_scale),
        ("The autoencoder is the fastest at scale", speed_at_scale),
    ):
        verdict, evidence = rule(runs)
        rows.append({"claim": claim, "verdict": verdict, "evidence": evidence})
    return pd.DataFrame(rows, columns=["claim", "verdict", "evidence"])


def at_scale_markdown(table: pd.DataFrame) -> str:
    """The section "At scale" of findings.md."""
    lines = [
        "## At scale",
        "Each claim decided on the largest run that has its methods (this run's data sets and "
        "the scaling ladder's rungs when the ladder table is given).",
    ]
    lines += [f"- **{r.claim}: {r.verdict}.** {r.evidence}" for r in table.itertuples()]
    return "\n".join(lines) + "\n"
