"""findings.md is computed from the tables: change one number and its verdict flips."""

from __future__ import annotations

import pandas as pd
import pytest

from scdrbench.summary.findings import FAILS, HOLDS, UNKNOWN, findings, findings_markdown


def tables(**override):
    acc = {
        "pca": 0.60,
        "tsne": 0.90,
        "umap": 0.88,
        "ae_keras": 0.87,
        "ae_tf": 0.86,
        "true_features": 0.95,
        "random": 0.1,
    }
    acc.update(override)
    rows = [("d", m, "knn_accuracy", v) for m, v in acc.items()]
    rows += [
        ("d", "tsne", "knc", 0.5),
        ("d", "tsne", "cpd", 0.3),
        ("d", "tsne_p350", "knc", 0.7),
        ("d", "tsne_p350", "cpd", 0.5),
    ]
    metrics = pd.DataFrame(rows, columns=["dataset", "method", "metric", "value"])
    fits = {"tsne": 60.0, "umap": 40.0, "ae_keras": 10.0, "ae_tf": 8.0, "pca": 0.01}
    timing = pd.DataFrame(
        [("d", m, 1000, s, "ok") for m, s in fits.items()],
        columns=["dataset", "method", "n_cells", "fit_seconds", "status"],
    )
    return metrics, timing


def verdicts(metrics, timing):
    return findings(metrics, timing).set_index("claim")["verdict"].to_dict()


def test_every_claim_has_a_verdict_with_its_numbers():
    metrics, timing = tables()
    table = findings(metrics, timing)
    assert set(table["verdict"]) == {HOLDS}
    md = findings_markdown(table)
    assert "**PCA fails to resolve the populations: holds.**" in md
    assert "d / pca / knn_accuracy = 0.600" in md


@pytest.mark.parametrize(
    "override, claim",
    [
        ({"pca": 0.89}, "PCA fails to resolve the populations"),
        ({"umap": 0.70}, "Non-linear methods (t-SNE, UMAP) resolve them"),
        ({"ae_tf": 0.70}, "Autoencoders match t-SNE/UMAP"),
    ],
)
def test_changing_one_number_flips_its_verdict(override, claim):
    assert verdicts(*tables())[claim] == HOLDS
    assert verdicts(*tables(**override))[claim] == FAILS


def test_timing_and_global_structure_flip_too():
    metrics, timing = tables()
    timing.loc[timing["method"] == "umap", "fit_seconds"] = 1.0
    assert verdicts(metrics, timing)["The autoencoder is the fastest at scale"] == FAILS
    metrics, timing = tables()
    metrics.loc[(metrics["method"] == "tsne_p350") & (metrics["metric"] == "cpd"), "value"] = 0.1
    assert (
        verdicts(metrics, timing)["t-SNE at high perplexity keeps more global structure"] == FAILS
    )


def test_missing_methods_are_not_measured():
    metrics, timing = tables()
    metrics = metrics[~metrics["method"].isin(["ae_keras", "ae_tf", "tsne_p350"])]
    v = verdicts(metrics, timing)
    assert v["Autoencoders match t-SNE/UMAP"] == UNKNOWN
    assert v["t-SNE at high perplexity keeps more global structure"] == UNKNOWN


def test_a_selection_without_tsne_and_umap_warns_nothing():
    import warnings

    metrics, timing = tables()
    metrics = metrics[~metrics["method"].isin(["tsne", "umap"])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's All-NaN RuntimeWarning would raise here
        v = verdicts(metrics, timing)
    assert v["Autoencoders match t-SNE/UMAP"] == UNKNOWN
