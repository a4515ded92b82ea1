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


def ladder_file(tmp_path, ae_fit=60.0, p350_knc=0.6):
    """A ladder table in the ladder's layout: comment header, one row per method and rung."""
    rows = [
        ("tsne", 100000, "ok", 250.0, 0.40, 0.30),
        ("tsne_p350", 100000, "ok", 1200.0, p350_knc, 0.50),
        ("ae_keras", 100000, "ok", 50.0, 0.30, 0.20),
        ("tsne", 1306127, "ok", 2230.0, "", ""),
        ("tsne_p350", 1306127, "not run: needs 78 GiB", "", "", ""),
        ("umap", 1306127, "ok", 1708.0, "", ""),
        ("ae_keras", 1306127, "ok", ae_fit, "", ""),
        ("pca", 1306127, "ok", 0.2, "", ""),
    ]
    lines = [
        "# Scaling ladder",
        "# machine: test",
        "method\trung\tproxy_version\tstatus\tfit_s\tknc\tcpd",
    ]
    lines += ["\t".join(map(str, (m, r, 2, s, f, k, c))) for m, r, s, f, k, c in rows]
    path = tmp_path / "ladder.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def at_scale_verdicts(metrics, timing, ladder=None):
    from scdrbench.summary.findings import at_scale

    table = at_scale(metrics, timing, ladder)
    return dict(zip(table["claim"], zip(table["verdict"], table["evidence"])))


def test_at_scale_without_the_ladder_decides_on_this_run():
    verdict = at_scale_verdicts(*tables())
    speed = verdict["The autoencoder is the fastest at scale"]
    assert speed[0] == HOLDS and "decided on d (1,000 cells)" in speed[1]
    assert "ae_tf fit 8.0 s" in speed[1]
    glob = verdict["t-SNE at high perplexity keeps more global structure"]
    assert glob[0] == HOLDS and "tsne_p350: KNC 0.700, CPD 0.500" in glob[1]


def test_at_scale_decides_each_claim_on_the_largest_run_that_has_its_methods(tmp_path):
    verdict = at_scale_verdicts(*tables(), ladder_file(tmp_path))
    speed = verdict["The autoencoder is the fastest at scale"]
    assert speed[0] == HOLDS
    assert "decided on rung 1,306,127, proxy v2 (1,306,127 cells)" in speed[1]
    assert "ae_keras fit 60.0 s" in speed[1] and "umap fit 1,708.0 s" in speed[1]
    assert "tsne_p350: not run: needs 78 GiB" in speed[1] and "pca" not in speed[1]
    # tsne_p350 is scored at 100k, not at 1.3M: the global claim is decided at 100k
    glob = verdict["t-SNE at high perplexity keeps more global structure"]
    assert "decided on rung 100,000" in glob[1] and glob[0] == HOLDS
    # one number flips each verdict
    flipped = at_scale_verdicts(*tables(), ladder_file(tmp_path, ae_fit=2000.0, p350_knc=0.3))
    assert flipped["The autoencoder is the fastest at scale"][0] == FAILS
    assert flipped["t-SNE at high perplexity keeps more global structure"][0] == FAILS


def test_at_scale_prefers_the_rung_that_ran_more_methods_at_the_same_size(tmp_path):
    """Two proxy versions at 1.3M: the speed claim is decided on the one where more methods
    finished (a later version that ran every method), not on the first in the table."""
    path = ladder_file(tmp_path)
    later = [
        ("ae_keras", 1306127, 4, "ok", 72.0),
        ("ae_tf", 1306127, 4, "ok", 57.0),
        ("umap", 1306127, 4, "ok", 1690.0),
        ("tsne", 1306127, 4, "ok", 2540.0),
        ("pacmap", 1306127, 4, "ok", 1064.0),
    ]
    with path.open("a") as f:
        f.writelines(
            "\t".join(map(str, (m, r, v, s, fit, "", ""))) + "\n" for m, r, v, s, fit in later
        )
    speed = at_scale_verdicts(*tables(), path)["The autoencoder is the fastest at scale"]
    assert "decided on rung 1,306,127, proxy v4" in speed[1]
    assert "ae_tf fit 57.0 s" in speed[1] and "pacmap fit 1,064.0 s" in speed[1]


def test_at_scale_names_the_config_key_of_a_missing_ladder(tmp_path):
    from scdrbench.common.errors import ScdrbenchError

    with pytest.raises(ScdrbenchError, match=r"'findings.ladder'.*make ladder"):
        at_scale_verdicts(*tables(), tmp_path / "nope.tsv")


def test_findings_cli_writes_the_at_scale_section(tmp_path):
    from scdrbench.summary.cli import cli

    metrics, timing = tables()
    metrics.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    timing.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    md = tmp_path / "findings.md"
    args = ["findings", "--metrics", str(tmp_path / "m.tsv"), "--timing", str(tmp_path / "t.tsv")]
    cli([*args, "--md", str(md), "--ladder", str(ladder_file(tmp_path))])
    text = md.read_text()
    assert "## d" in text and "## At scale" in text
    assert "the ladder (`" in text and "rung 1,306,127" in text
