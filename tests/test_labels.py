"""Labels that cannot skew a score: cells without a label are left out of every label metric
(never scored as a class "unlabelled"), a labels file that labels too few cells, has a header
or more columns stops prepare with one line; and scores from a kept result are marked in
metrics.tsv, the ranking and the findings (issue 26, items 1 and 6)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from scdrbench import metrics
from scdrbench.common import keep
from scdrbench.common.errors import ScdrbenchError
from scdrbench.data.labels import attach_labels, read_labels_file
from scdrbench.metrics import score
from scdrbench.metrics.base import UNLABELLED, encode_labels
from tests.conftest import ROOT, make_blobs
from tests.test_summary_report import tidy

BARCODES = [f"AACG{i:04d}-1" for i in range(100)]
LABEL_METRICS = ("knn_accuracy", "knc", "silhouette")


# --- the metrics: labelled cells only --------------------------------------------------------


def test_missing_label_values_are_not_a_class():
    labels = ["a", UNLABELLED, "", None, np.nan, "NaN", "b", " Unlabelled ", "a"]
    codes, n_classes = encode_labels(labels)
    assert n_classes == 2
    assert codes.tolist() == [0, -1, -1, -1, -1, -1, 1, -1, 0]


def test_label_metrics_score_only_the_labelled_cells():
    X, y = make_blobs(n_per=100, n_classes=4, dims=10, sep=6.0, seed=2)
    rng = np.random.default_rng(0)
    emb = X[:, :2] + rng.normal(scale=2.0, size=(len(X), 2))
    labels = np.array([f"t{k}" for k in y], dtype=object)
    unlabelled = rng.random(len(labels)) >= 0.3  # ~30% keep a label, as in the issue
    missing = labels.copy()
    missing[unlabelled] = np.array([UNLABELLED, "", None], dtype=object)[
        np.arange(unlabelled.sum()) % 3
    ]
    n_lab = int((~unlabelled).sum())

    table = metrics.score_embedding(emb, X, missing, seed=0).set_index("metric")
    alone = metrics.score_embedding(emb[~unlabelled], X[~unlabelled], labels[~unlabelled], seed=0)
    alone = alone.set_index("metric")
    # the same cells as a class of their own: what the issue saw
    as_class = labels.copy()
    as_class[unlabelled] = "other"
    skewed = metrics.score_embedding(emb, X, as_class, seed=0).set_index("metric")
    for metric in LABEL_METRICS:
        assert table.loc[metric, "n_cells_scored"] == min(n_lab, 10_000), metric
        assert f"{len(labels) - n_lab} cells without a label left out" in table.loc[metric, "note"]
        assert table.loc[metric, "value"] == pytest.approx(alone.loc[metric, "value"]), metric
        assert table.loc[metric, "value"] != pytest.approx(skewed.loc[metric, "value"]), metric
    # the structure metrics still use every cell
    assert table.loc["knn", "n_cells_scored"] == len(labels)


# --- prepare: one line naming the labels file ------------------------------------------------


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(",".join(r) + "\n" for r in rows))
    return str(path)


def _read(path, **kw):
    return read_labels_file(
        path, BARCODES, source_name="dataset 'x'", key="datasets.x.labels", **kw
    )


def test_too_few_labelled_cells_stop_with_counts_and_an_example_from_each_side(tmp_path):
    rows = [(b, f"t{i % 3}") for i, b in enumerate(BARCODES[:30])]
    rows += [(f"ZZZZ{i}", "t0") for i in range(5)]  # barcodes of another sample
    path = _write(tmp_path, "lab.csv", rows)
    with pytest.raises(ScdrbenchError) as err:
        _read(path)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"dataset 'x': labels file {path} labels 30 of 100 cells (30%; ")
    assert "datasets.x.labels.min_labelled_fraction is 0.5" in line
    assert "30 of its 35 barcodes match a cell" in line
    assert "unmatched, e.g. file 'ZZZZ0' and data 'AACG0030-1'" in line


def test_below_the_share_the_labelled_cells_are_kept_and_the_rest_unlabelled(tmp_path, caplog):
    rows = [(b, f"t{i % 3}") for i, b in enumerate(BARCODES[:30])] + [(BARCODES[30], "")]
    path = _write(tmp_path, "lab.csv", rows)
    with caplog.at_level(logging.WARNING, logger="scdrbench.prepare"):
        got = _read(path, min_fraction=0.25)
    assert got.index.tolist() == BARCODES
    assert (got.iloc[:30] != UNLABELLED).all() and (got.iloc[30:] == UNLABELLED).all()
    assert "labels 30 of 100 cells; the other 70" in caplog.text


def test_bytes_repr_barcodes_are_read_as_the_string_inside(tmp_path, caplog):
    rows = [(f"b'{b}'" if i % 2 else b, f"t{i % 3}") for i, b in enumerate(BARCODES)]
    path = _write(tmp_path, "lab.csv", rows)
    with caplog.at_level(logging.INFO, logger="scdrbench.prepare"):
        got = _read(path)
    assert (got != UNLABELLED).all()
    assert got[BARCODES[1]] == "t1"
    assert "50 barcodes written as b'...' read as the string inside" in caplog.text


def test_a_header_or_more_columns_need_the_column_key(tmp_path):
    body = [(b, "decoy", f"t{i % 3}") for i, b in enumerate(BARCODES)]
    three = _write(tmp_path, "three.csv", [("barcode", "batch", "cell_type"), *body])
    with pytest.raises(ScdrbenchError, match="has 3 columns") as err:
        _read(three)
    assert str(err.value) == (
        f"dataset 'x': labels file {three} has 3 columns (first row: barcode,batch,cell_type); "
        "set datasets.x.labels.column to the name of the label column (the file then needs a "
        "header row)"
    )
    # with the column named, that column is the label, whichever position it has
    got = _read(three, column="cell_type")
    assert got[BARCODES[4]] == "t1" and "decoy" not in set(got)
    with pytest.raises(ScdrbenchError, match=r"has no column 'celltype' in its header row"):
        _read(three, column="celltype")

    header = _write(tmp_path, "header.csv", [("", "cell_type"), *[(b, t) for b, _, t in body]])
    with pytest.raises(ScdrbenchError, match=r"starts with a header row \(,cell_type\); set "):
        _read(header)
    named = _write(tmp_path, "named.csv", [("cell", "cell_type"), *[(b, t) for b, _, t in body]])
    with pytest.raises(ScdrbenchError, match=r"datasets\.x\.labels\.column to the label column"):
        _read(named)
    assert (_read(named, column="cell_type") != UNLABELLED).all()


def test_a_label_column_with_gaps_is_checked_the_same_way(tiny_counts):
    tiny_counts.obs["partial"] = tiny_counts.obs["cell_type"].astype(object)
    tiny_counts.obs.iloc[: 2 * tiny_counts.n_obs // 3, -1] = np.nan
    entry = {"from": "column", "column": "partial"}
    with pytest.raises(ScdrbenchError, match=r"labels column 'partial' labels 100 of 300 cells"):
        attach_labels(tiny_counts.copy(), entry, source_name="dataset 'x'")
    out = attach_labels(tiny_counts, {**entry, "min_labelled_fraction": 0.3}, source_name="x")
    assert (out.obs["label"] == UNLABELLED).sum() == 200
    assert "nan" not in set(out.obs["label"].astype(str))


def test_the_new_keys_are_in_the_schema_and_a_default_reruns_nothing():
    import yaml

    from scdrbench.common.config import ConfigError, digest, validate_config

    def cfg(labels):
        config = yaml.safe_load((ROOT / "config.yaml").read_text())
        config["datasets"]["x"] = {"source": "scanpy_pbmc68k", "labels": labels}
        config["selection"] = {"datasets": ["x"], "methods": ["pca"]}
        return config

    filled = validate_config(cfg({"from": "file", "file": "l.csv", "column": "cell_type"}))
    entry = filled["datasets"]["x"]
    assert entry["labels"]["min_labelled_fraction"] == 0.5
    before = {**entry, "labels": dict(entry["labels"])}
    del before["labels"]["min_labelled_fraction"]  # an entry of a release without the key
    assert digest(entry, "dataset") == digest(before, "dataset")
    lowered = {**entry, "labels": {**entry["labels"], "min_labelled_fraction": 0.2}}
    assert digest(lowered, "dataset") != digest(entry, "dataset")
    with pytest.raises(ConfigError, match="min_labelled_fraction"):
        validate_config(cfg({"from": "file", "file": "l.csv", "min_labelled_fraction": 1.5}))


# --- kept results are marked in metrics.tsv, the ranking and the findings -------------------


def _metric_file(path, dataset, method, values):
    table = tidy({(method, metric): value for metric, value in values.items()}, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.reindex(columns=score.COLUMNS, fill_value="").to_csv(path, sep="\t", index=False)
    return str(path)


def test_scores_of_a_kept_result_are_marked_everywhere(tmp_path):
    from scdrbench.summary.cli import cli
    from scdrbench.summary.findings import findings, findings_markdown
    from scdrbench.summary.render import ranking_markdown
    from scdrbench.summary.tables import ranking_table

    scores = {"pca": (0.6, 0.4), "tsne": (0.9, 0.5), "umap": (0.88, 0.45)}
    files, embeddings = [], []
    for method, (acc, knc) in scores.items():
        files.append(
            _metric_file(
                tmp_path / f"results/metrics/ds/{method}.tsv",
                "ds",
                method,
                {"knn_accuracy": acc, "knc": knc},
            )
        )
        emb = tmp_path / f"results/embed/ds/{method}.h5ad"
        emb.parent.mkdir(parents=True, exist_ok=True)
        emb.write_bytes(method.encode())
        keep.record([emb], [], "ok")
        embeddings.append(str(emb))
    # t-SNE's re-run failed and its previous embedding was kept (its scores are of that one)
    keep.note_failure([embeddings[1]], "error", "error: perplexity 300 is too large")

    tsv, md = tmp_path / "metrics.tsv", tmp_path / "metrics.md"
    cli(["metrics", "--metrics", *files, "--embeddings", *embeddings, "--tsv", str(tsv)]
        + ["--md", str(md)])  # fmt: skip
    table = pd.read_csv(tsv, sep="\t", keep_default_na=False)
    kept = table.groupby("method")["kept"].first()
    assert kept["tsne"].startswith("kept the result of ")
    assert "perplexity 300 is too large" in kept["tsne"]
    assert kept["pca"] == "" and kept["umap"] == ""
    assert "| tsne (kept: re-run failed) " in md.read_text()
    assert "| pca " in md.read_text() and "pca (kept" not in md.read_text()

    metrics_tsv = pd.read_csv(tsv, sep="\t")
    ranking = ranking_table(metrics_tsv).set_index("method")
    assert ranking.loc["tsne", "kept"] == kept["tsne"]
    assert ranking.loc["pca", "kept"] == "" and ranking.loc["umap", "kept"] == ""
    rmd = ranking_markdown(ranking.reset_index())
    assert rmd.count("(kept: re-run failed)") == 1 and "tsne (kept: re-run failed)" in rmd

    verdicts = findings(metrics_tsv, None).set_index("claim")
    pca_claim = verdicts.loc["PCA fails to resolve the populations"]
    assert pca_claim["kept"] == "tsne"
    assert (
        "ds / tsne / knn_accuracy = 0.900 (a kept result: its re-run failed)"
        in (pca_claim["evidence"])
    )
    assert "ds / pca / knn_accuracy = 0.600; " in pca_claim["evidence"]
    text = findings_markdown(verdicts.reset_index())
    assert "holds.** *From kept results (tsne): their re-run failed.*" in text
    # without kept results nothing is marked
    fresh = metrics_tsv.assign(kept=np.nan)
    assert "kept" not in findings_markdown(findings(fresh, None))
    assert (ranking_table(fresh)["kept"] == "").all()


# --- through snakemake: a labels file covering 30% of the cells -----------------------------


@pytest.mark.workflow
@pytest.mark.slow
def test_a_labels_file_covering_30_percent_scores_only_the_labelled_cells(tmp_path):
    import anndata as ad

    from scdrbench.data.synthetic import SyntheticSpec, barcodes, cell_types, type_names
    from tests.test_workflow import run_snakemake

    spec = SyntheticSpec(n_cells=300, n_genes=500, n_types=4, seed=3)
    bcs, types = barcodes(spec.n_cells), type_names(spec)[cell_types(spec)]
    listed = np.arange(spec.n_cells) % 10 < 3  # 90 of 300 cells
    rows = [
        f"{b if i % 2 else repr(b.encode())},{t}\n"  # half as b'...', as in the issue
        for i, (b, t) in enumerate(zip(bcs[listed], types[listed], strict=True))
    ]
    (tmp_path / "labels30.csv").write_text("".join(rows))
    synthetic = "{n_cells: 300, n_genes: 500, n_types: 4, seed: 3}"
    (tmp_path / "labels30.yaml").write_text(
        "selection: {datasets: [lab30, lab30_strict], methods: [pca]}\n"
        "preprocess: {n_hvg: 300, n_pcs: 20, significant_pcs: {n_permutations: 3, "
        "max_cells: 300}}\n"
        "threads: {prepare: 1, preprocess: 1, embed: 1, score: 1}\n"
        "datasets:\n"
        f"  lab30: {{source: synthetic, synthetic: {synthetic}, n_cells: 300,\n"
        "    labels: {from: file, file: labels30.csv, min_labelled_fraction: 0.25}}\n"
        f"  lab30_strict: {{source: synthetic, synthetic: {synthetic}, n_cells: 300,\n"
        "    labels: {from: file, file: labels30.csv}}\n"
    )
    proc = run_snakemake(
        *("--configfile", str(tmp_path / "labels30.yaml"), "--cores", "2"),
        *("--directory", str(tmp_path), "--keep-going"),
        *("results/metrics/lab30/pca.tsv", "results/data/lab30_strict/counts.h5ad"),
        check=False,
    )
    # the default share (0.5): prepare stops with one line, the same in its log
    errors = [x for x in proc.stderr.splitlines() if x.startswith("scdrbench error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith(
        "scdrbench error: dataset 'lab30_strict': labels file labels30.csv labels 90 of 300 "
        "cells (30%; datasets.lab30_strict.labels.min_labelled_fraction is 0.5): 90 of its 90 "
        "barcodes match a cell; unmatched, e.g. data "
    )
    log = (tmp_path / "results/logs/prepare/lab30_strict.log").read_text()
    assert errors[0].split(" (log: ")[0] in log
    assert not (tmp_path / "results/data/lab30_strict/counts.h5ad").exists()
    assert proc.returncode != 0

    # the lowered share: every label metric on the 90 labelled cells, the note counts the rest
    prep = (tmp_path / "results/logs/prepare/lab30.log").read_text()
    assert "45 barcodes written as b'...' read as the string inside" in prep
    assert "labels 90 of 300 cells; the other 210" in prep
    table = pd.read_csv(tmp_path / "results/metrics/lab30/pca.tsv", sep="\t").set_index("metric")
    for metric in LABEL_METRICS:
        assert table.loc[metric, "n_cells_scored"] == 90, metric
        assert "210 cells without a label left out" in table.loc[metric, "note"], metric
    assert table.loc["knn", "n_cells_scored"] == 300
    emb = ad.read_h5ad(tmp_path / "results/embed/lab30/pca.h5ad")
    labels = emb.obs["label"].astype(str).to_numpy()
    assert (labels == UNLABELLED).sum() == 210
    lab = labels != UNLABELLED
    xy = np.asarray(emb.obsm["X_emb"])
    direct = metrics.knn_accuracy(xy[lab], labels[lab], seed=0)
    assert table.loc["knn_accuracy", "value"] == pytest.approx(direct)
    as_class = metrics.knn_accuracy(xy, np.where(lab, labels, "other"), seed=0)
    assert table.loc["knn_accuracy", "value"] != pytest.approx(as_class)
