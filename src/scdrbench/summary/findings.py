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
    for variant in ("tsne_p350", "tsne_p350_lean"):
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
