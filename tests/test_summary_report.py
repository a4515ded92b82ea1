"""The readable results: metrics and ranking tables, the heatmap, per-embedding panels, the report.

The ranking is tested on constructed metric tables with known answers, NaN handling included;
the last test builds a tiny run's HTML report through Snakemake and, where Debian's ``chromium``
is installed, opens it headless and checks the screenshot is not blank.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scdrbench.common.errors import ScdrbenchError
from scdrbench.summary import cli, figures, render, tables
from tests.conftest import ROOT, make_blobs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tidy(values: dict, dataset: str = "d1", notes: dict | None = None) -> pd.DataFrame:
    """{(method, metric): value} -> the tidy metrics table of one dataset."""
    notes = notes or {}
    return pd.DataFrame(
        [
            {
                "dataset": dataset,
                "method": method,
                "metric": metric,
                "value": value,
                "higher_is_better": True,
                "n_cells_scored": 100,
                "seed": 0,
                "note": notes.get((method, metric), ""),
            }
            for (method, metric), value in values.items()
        ]
    )


def grid(table: dict[str, dict[str, float]], dataset: str = "d1", **kw) -> pd.DataFrame:
    """{method: {metric: value}} -> tidy."""
    return tidy({(m, k): v for m, row in table.items() for k, v in row.items()}, dataset, **kw)


def by_method(ranking: pd.DataFrame, dataset: str = "d1") -> pd.DataFrame:
    return ranking[ranking["dataset"] == dataset].set_index("method")


def test_ranking_orders_methods_by_mean_rank():
    metrics = grid(
        {
            "random": {"knn_accuracy": 0.25, "knn": 0.01, "cpd": 0.00},
            "pca": {"knn_accuracy": 0.60, "knn": 0.10, "cpd": 0.90},
            "tsne": {"knn_accuracy": 0.95, "knn": 0.40, "cpd": 0.50},
        }
    )
    r = tables.ranking_table(metrics)
    assert list(r["method"]) == ["tsne", "pca", "random"]
    assert list(r["rank"]) == [1, 2, 3]
    t = by_method(r)
    # tsne: 1, 1, 2; pca: 2, 2, 1; random: 3, 3, 3
    assert t.loc["tsne", "mean_rank"] == pytest.approx(4 / 3)
    assert t.loc["pca", "mean_rank"] == pytest.approx(5 / 3)
    assert t.loc["random", "mean_rank"] == 3
    assert t.loc["pca", "rank_cpd"] == 1 and t.loc["tsne", "rank_knn"] == 1
    assert (r["n_metrics_ranked"] == 3).all() and (r["n_not_scored"] == 0).all()
    # Metric columns follow the scoring module's order, whatever the input order.
    assert [c for c in r.columns if c.startswith("rank_")] == [
        "rank_knn_accuracy",
        "rank_knn",
        "rank_cpd",
    ]


def test_ranking_nan_handling():
    metrics = grid(
        {
            "a": {"knn_accuracy": 0.9, "knn": 0.5, "silhouette": np.nan},
            "b": {"knn_accuracy": np.nan, "knn": 0.4, "silhouette": np.nan},
            "c": {"knn_accuracy": 0.1, "knn": np.nan, "silhouette": np.nan},
            "d": {"knn_accuracy": np.nan, "knn": 0.1, "silhouette": np.nan},
        }
    )
    r = tables.ranking_table(metrics)
    t = by_method(r)
    # A metric that is NaN for every method is left out of the dataset's ranking.
    assert set(r["left_out"]) == {"silhouette"}
    assert (r["n_metrics_ranked"] == 2).all() and r["rank_silhouette"].isna().all()
    # One NaN ranks last; NaNs tie at the average of the last places (here 3 and 4).
    assert t.loc["c", "rank_knn"] == 4
    assert t.loc["b", "rank_knn_accuracy"] == 3.5 and t.loc["d", "rank_knn_accuracy"] == 3.5
    assert t.loc["a", "rank_knn_accuracy"] == 1 and t.loc["c", "rank_knn_accuracy"] == 2
    assert dict(t["n_not_scored"]) == {"a": 0, "b": 1, "c": 1, "d": 1}
    # a: (1+1)/2; b: (3.5+2)/2; c: (2+4)/2; d: (3.5+3)/2
    assert list(r["method"]) == ["a", "b", "c", "d"]
    assert list(r["mean_rank"]) == [1.0, 2.75, 3.0, 3.25]


def test_ranking_missing_row_counts_as_nan_and_ties_share_a_rank():
    metrics = pd.concat(
        [
            grid({"x": {"knn": 0.5, "cpd": 0.1}, "y": {"knn": 0.1, "cpd": 0.5}}),
            grid({"z": {"knn": 0.3}}),  # no cpd row at all
        ],
        ignore_index=True,
    )
    r = tables.ranking_table(metrics)
    t = by_method(r)
    assert t.loc["z", "rank_cpd"] == 3 and t.loc["z", "n_not_scored"] == 1
    # x: knn 1, cpd 2; y: 3, 1; z: 2, 3 (no row = NaN = last)
    assert list(r["method"]) == ["x", "y", "z"] and list(r["mean_rank"]) == [1.5, 2.0, 2.5]
    tie = tables.ranking_table(grid({"p": {"knn": 0.5, "cpd": 0.1}, "q": {"knn": 0.1, "cpd": 0.5}}))
    assert list(tie["rank"]) == [1, 1] and list(tie["method"]) == ["p", "q"]


def test_ranking_respects_lower_is_better_and_datasets_are_separate():
    m1 = grid({"a": {"knn": 0.9}, "b": {"knn": 0.1}}, dataset="d1")
    m2 = grid({"a": {"err": 0.9}, "b": {"err": 0.1}}, dataset="d2")
    m2["higher_is_better"] = False
    r = tables.ranking_table(pd.concat([m1, m2], ignore_index=True))
    assert list(by_method(r, "d1").index) == ["a", "b"]
    assert list(by_method(r, "d2").index) == ["b", "a"]
    assert set(by_method(r, "d1")["left_out"]) == {"err"}  # no err rows in d1


def test_ranking_carries_median_timing_and_labels():
    metrics = grid({"a": {"knn": 0.9}, "b": {"knn": 0.1}})
    timing = pd.DataFrame(
        {
            "dataset": ["d1"] * 4,
            "method": ["a", "a", "a", "b"],
            "method_label": ["A", "A", "A", "B"],
            "s": [10.0, 30.0, 20.0, 5.0],
            "fit_seconds": [1.0, 3.0, 2.0, 0.5],
            "peak_rss_mb": [100.0, 100.0, 100.0, 50.0],
        }
    )
    t = by_method(tables.ranking_table(metrics, timing))
    assert t.loc["a", "job_s"] == 20 and t.loc["a", "fit_s"] == 2
    assert t.loc["b", "job_s"] == 5 and t.loc["a", "method_label"] == "A"
    assert np.isnan(by_method(tables.ranking_table(metrics)).loc["a", "job_s"])


def test_duplicate_metric_rows_are_a_clear_error():
    metrics = pd.concat([grid({"a": {"knn": 0.9}})] * 2, ignore_index=True)
    with pytest.raises(ScdrbenchError, match="more than one row for d1/a/knn"):
        tables.ranking_table(metrics)


def test_metrics_and_ranking_markdown():
    metrics = pd.concat(
        [
            grid(
                {"pca": {"knn_accuracy": 0.6, "silhouette": np.nan}, "tsne": {"knn_accuracy": 0.9}},
                notes={("pca", "silhouette"): "single label"},
            ),
            grid({"pca": {"knn_accuracy": 0.5}}, dataset="d2"),
        ],
        ignore_index=True,
    )
    md = render.metrics_markdown(metrics)
    assert md.count("\n## ") == 2 and "## d1" in md and "## d2" in md
    d1 = md.split("## d1")[1].split("## d2")[0]
    header = next(line for line in d1.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "method",
        "knn_accuracy",
        "silhouette",
    ]
    assert "| pca " in d1 and "0.600" in d1 and "n/a" in d1
    assert "- pca / silhouette: single label" in d1
    assert sum(line.startswith("| ") for line in d1.splitlines()) == 3  # header + 2 methods

    rmd = render.ranking_markdown(tables.ranking_table(metrics))
    d1 = rmd.split("## d1")[1].split("## d2")[0]
    rows = [line for line in d1.splitlines() if line.startswith("| ")]
    assert "| rank" in rows[0] and "job" in rows[0] and "fit" in rows[0]
    assert "tsne" in rows[1] and "pca" in rows[2]  # best first
    assert "n/a" in rows[1]  # no timing table: job and fit are n/a


def test_metrics_cli_writes_tidy_tsv_and_wide_md(tmp_path):
    files = []
    for method, acc in (("pca", 0.6), ("tsne", 0.9)):
        path = tmp_path / "metrics" / "d1" / f"{method}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid({method: {"knn_accuracy": acc, "knn": acc / 2, "cpd": np.nan}}).to_csv(
            path, sep="\t", index=False
        )
        files.append(str(path))
    tsv, md = tmp_path / "metrics.tsv", tmp_path / "metrics.md"
    cli.cli(["metrics", "--metrics", *files, "--tsv", str(tsv), "--md", str(md)])
    df = pd.read_csv(tsv, sep="\t")
    # the 8 tidy columns, kept (empty: no kept result) and the scaled score (NaN: no controls)
    assert df.shape == (6, 10)
    assert df["scaled"].isna().all() and df["kept"].isna().all()
    assert list(df.columns[:5]) == ["dataset", "method", "metric", "value", "higher_is_better"]
    header = next(line for line in md.read_text().splitlines() if line.startswith("| method"))
    assert header.split("|")[1:-1] == [" method   ", " knn_accuracy   ", " knn   ", " cpd   "]

    rtsv, rmd = tmp_path / "ranking.tsv", tmp_path / "ranking.md"
    cli.cli(["ranking", "--metrics", str(tsv), "--tsv", str(rtsv), "--md", str(rmd)])
    r = pd.read_csv(rtsv, sep="\t")
    assert list(r["method"]) == ["tsne", "pca"] and list(r["left_out"]) == ["cpd", "cpd"]
    assert "Left out (n/a for every method): cpd" in rmd.read_text()


def test_heatmap_writes_png_and_pdf_with_nan(tmp_path):
    metrics = pd.concat(
        [
            grid(
                {
                    "random": {"knn_accuracy": 0.2, "knn": 0.0, "silhouette": -0.1},
                    "tsne": {"knn_accuracy": 0.9, "knn": 0.4, "silhouette": np.nan},
                }
            ),
            grid({"pca": {"knn_accuracy": 0.5, "knn": 0.1, "silhouette": 0.2}}, dataset="d2"),
            grid({"pca": {"knn_accuracy": np.nan}}, dataset="d3"),
        ],
        ignore_index=True,
    )
    ranking = tables.ranking_table(metrics)
    png, pdf = tmp_path / "h.png", tmp_path / "h.pdf"
    figures.metrics_heatmap(metrics, ranking, [str(png), str(pdf)])
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # the cells' text, read from an SVG with text kept as text: the NaN silhouette of tsne is
    # drawn as "n/a", every value with two decimals, the rows in ranking order
    import matplotlib

    svg = tmp_path / "h.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figures.metrics_heatmap(metrics, ranking, [str(svg)])
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg.read_text())
    assert texts.count("n/a") == 1 + 3  # tsne's silhouette; d3's pca on all three metrics
    assert {"0.90", "0.40", "-0.10", "0.50"} <= set(texts)


def test_embedding_panels_one_png_per_embedding(tmp_path):
    X, y = make_blobs(n_per=30, dims=2)
    paths, outs = [], []
    for method in ("pca", "tsne"):
        obs = pd.DataFrame(
            {"label": pd.Categorical(y.astype(str))}, index=[f"c{i}" for i in range(len(y))]
        )
        emb = ad.AnnData(obs=obs)
        emb.obsm["X_emb"] = X
        emb.uns["method_label"] = method.upper()
        path = tmp_path / "embed" / "d1" / f"{method}.h5ad"
        path.parent.mkdir(parents=True, exist_ok=True)
        emb.write_h5ad(path)
        paths.append(str(path))
        outs.append(str(tmp_path / "panels" / "d1" / f"{method}.png"))
    metrics = grid({"pca": {"knn_accuracy": 0.97}})
    figures.embedding_panels(paths, outs, metrics)
    for out in outs:
        assert Path(out).read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ScdrbenchError, match="2 embeddings but 1 output"):
        figures.embedding_panels(paths, outs[:1])


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.workflow
@pytest.mark.slow
def test_report_html_builds_and_renders(tmp_path):
    """A two-method run, ``snakemake --report``, then (with chromium) a headless screenshot."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
    args = [
        "--directory",
        str(tmp_path),
        "--configfile",
        str(ROOT / "tests" / "config" / "test.yaml"),
        "--config",
        "selection={'datasets': ['synthetic_tiny'], 'methods': ['random', 'pca']}",
        "repeats=1",
    ]
    for extra in (["--cores", "2"], ["--report", "results/report.html"]):
        proc = subprocess.run(
            [*base, *extra, *args], env=env, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (tmp_path / "results" / "report.html").read_text()
    items = ("ranking.html", "metrics.html", "metrics_heatmap.png", "comparison.png", "scaling.png")
    for item in items:
        assert f"results/tables/{item}" in html or f"results/figures/{item}" in html, item
    assert "Embeddings" in html and "synthetic_tiny" in html
    ranking = pd.read_csv(tmp_path / "results" / "tables" / "ranking.tsv", sep="\t")
    assert list(ranking["method"]) == ["pca", "random"]  # the control is last
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium not installed (apt-get install chromium): report built, not rendered")

    def screenshot(name: str, **env) -> Path:
        shot = tmp_path / name
        subprocess.run(
            [
                "bash",
                str(ROOT / "tests" / "report_screenshot.sh"),
                str(tmp_path / "results" / "report.html"),
                str(shot),
            ],
            check=True,
            timeout=180,
            capture_output=True,
            env=dict(os.environ, **env),
        )
        return shot

    shot = screenshot("report.png")
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[0] > 500 and pixels.std() > 5  # not a blank page
    # Clicking through to the ranking shows it (the page's own HTML table, dark text on white).
    shot2 = screenshot("ranking.png", CLICK="Tables|results/tables/ranking.html")
    right = np.asarray(Image.open(shot2).convert("L"), dtype=float)[:, 400:]
    assert not np.array_equal(right, pixels[:, 400:]) and (right < 100).mean() > 0.005
    # Every figure opens from the report's menu and shows an image (not the page behind it).
    figures = ["comparison.png", "scaling.png", "metrics_heatmap.png"]
    for i, figure in enumerate(figures):
        shot = screenshot(f"figure{i}.png", CLICK=f"Figures|results/figures/{figure}")
        seen = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert not np.array_equal(seen, pixels), figure
        assert seen[:, 300:].std() > 10, figure  # a drawn figure, not a blank pane
    shot = screenshot("panel.png", CLICK="Embeddings|synthetic_tiny")
    assert not np.array_equal(np.asarray(Image.open(shot).convert("L"), dtype=float), pixels)


def test_ranking_of_a_dataset_with_no_applicable_metric():
    r = tables.ranking_table(grid({"a": {"knn": np.nan}, "b": {"knn": np.nan}}))
    assert r["rank"].isna().all() and r["mean_rank"].isna().all()
    assert (r["n_metrics_ranked"] == 0).all() and set(r["left_out"]) == {"knn"}
    assert "| n/a " in render.ranking_markdown(r)


def test_scaled_scores_put_the_controls_at_0_and_1():
    from scdrbench.summary.tables import scale

    rows = []
    for method, control, acc, err in (
        ("random", "negative", 0.2, 5.0),
        ("true_features", "positive", 1.0, 1.0),
        ("spectral", "positive", 0.8, 2.0),
        ("umap", "", 0.6, 3.0),
    ):
        rows.append(("d1", method, "knn_accuracy", acc, True, control))
        rows.append(("d1", method, "stress", err, False, control))  # lower is better
        rows.append(("d2", method, "knn_accuracy", acc, True, ""))  # no controls on d2
    df = pd.DataFrame(
        rows, columns=["dataset", "method", "metric", "value", "higher_is_better", "control"]
    )
    out = scale(df).set_index(["dataset", "method", "metric"])["scaled"]
    assert out["d1", "random", "knn_accuracy"] == pytest.approx(0.0)
    assert out["d1", "true_features", "knn_accuracy"] == pytest.approx(1.0)
    assert out["d1", "umap", "knn_accuracy"] == pytest.approx(0.5)
    assert out["d1", "spectral", "knn_accuracy"] == pytest.approx(0.75)
    # lower is better: the best positive control is the smallest error
    assert out["d1", "random", "stress"] == pytest.approx(0.0)
    assert out["d1", "true_features", "stress"] == pytest.approx(1.0)
    assert out["d1", "umap", "stress"] == pytest.approx(0.5)
    assert out.loc["d2"].isna().all()
