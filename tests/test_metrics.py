"""Unit tests of the quality metrics on constructed cases with known answers (scdrbench.metrics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scdrbench import metrics
from scdrbench.common.errors import DamagedInputError, ScdrbenchError
from scdrbench.metrics import score

N_BLOB_CLASSES = 6


def blobs(n=600, n_classes=N_BLOB_CLASSES, n_dims=50, seed=0, spread=0.05):
    """Gaussian blobs whose centres lie in the first two of ``n_dims`` dimensions.

    Returns the reference (structure in dims 0-1, small noise elsewhere), a faithful 2-D
    embedding (its first two columns) and balanced integer labels.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(n_classes, 2))
    labels = np.arange(n) % n_classes
    emb = centres[labels] + rng.normal(size=(n, 2))
    ref = np.hstack([emb, rng.normal(scale=spread, size=(n, n_dims - 2))])
    return ref, emb, labels


@pytest.fixture(scope="module")
def blob_data():
    return blobs()


def random_embedding(n, seed=1):
    return np.random.default_rng(seed).normal(size=(n, 2))


# --- known answers -------------------------------------------------------------------------


def test_identity_embedding_scores_one():
    x = np.random.default_rng(0).normal(size=(400, 2))
    assert metrics.knn_preservation(x, x.copy()) == 1.0
    assert metrics.cpd(x, x.copy(), seed=0) == pytest.approx(1.0)
    assert metrics.trustworthiness(x, x.copy(), seed=0) == pytest.approx(1.0)
    assert metrics.continuity(x, x.copy(), seed=0) == pytest.approx(1.0)


def test_random_embedding_knn_near_analytical_expectation():
    # If the embedding is drawn independently of the reference, then by exchangeability a cell's
    # k nearest neighbours in the embedding are a uniformly random k-subset of the other n - 1
    # cells. The overlap with its k reference neighbours is hypergeometric with mean k * k/(n-1),
    # so the expected fraction kept is k / (n - 1) (= 0.02 here). The per-cell fraction has a
    # standard deviation of about 0.045, so the mean over 500 cells is within ~0.002 of it.
    n, k = 500, 10
    ref = np.random.default_rng(0).normal(size=(n, 50))
    value = metrics.knn_preservation(ref, random_embedding(n), k=k)
    assert value == pytest.approx(k / (n - 1), abs=0.01)


def test_random_embedding_cpd_near_zero():
    ref = np.random.default_rng(0).normal(size=(500, 50))
    assert abs(metrics.cpd(ref, random_embedding(500), seed=0)) < 0.05


def test_random_embedding_trustworthiness_continuity_near_expectation():
    # Trustworthiness T = 1 - 2/(n k (2n - 3k - 1)) * sum_i sum_{j in U_k(i)} (r(i, j) - k),
    # U_k(i): embedding neighbours of i that are not among its k reference neighbours, r: rank
    # in the reference. For an independent random embedding each of the k embedding neighbours
    # has a reference rank uniform on 1..n-1, so E[(r - k)^+] = (n-1-k)(n-k) / (2(n-1)) and
    # E[T] = 1 - (n-1-k)(n-k) / ((n-1)(2n-3k-1)) (0.544 at n=500, k=30). Continuity is T with the
    # spaces swapped: same expectation.
    n, k = 500, 30
    expected = 1 - (n - 1 - k) * (n - k) / ((n - 1) * (2 * n - 3 * k - 1))
    ref = np.random.default_rng(0).normal(size=(n, 50))
    emb = random_embedding(n)
    assert metrics.trustworthiness(ref, emb, k=k, seed=0) == pytest.approx(expected, abs=0.02)
    assert metrics.continuity(ref, emb, k=k, seed=0) == pytest.approx(expected, abs=0.02)


def test_permuted_labels_drop_knn_accuracy_to_chance(blob_data):
    _, emb, labels = blob_data
    permuted = np.random.default_rng(3).permutation(labels)
    # balanced classes, labels independent of position: a prediction is right with prob. 1/C
    value = metrics.knn_accuracy(emb, permuted, seed=0)
    assert value == pytest.approx(1 / N_BLOB_CLASSES, abs=0.07)


def test_separable_blobs_score_high(blob_data):
    _, emb, labels = blob_data
    assert metrics.knn_accuracy(emb, labels, seed=0) > 0.9
    assert metrics.silhouette(emb, labels, seed=0) > 0.5


def test_knc_is_one_for_faithful_blobs_and_lower_for_random():
    ref, emb, labels = blobs(n=600, n_classes=12)
    assert metrics.knc_preservation(ref, emb, labels) == 1.0
    assert metrics.knc_preservation(ref, random_embedding(600), labels) < 0.8


def test_knc_neighbour_count():
    assert metrics.knc_n_neighbours(2) == 0
    assert metrics.knc_n_neighbours(3) == 1
    assert metrics.knc_n_neighbours(11) == 5
    assert metrics.knc_n_neighbours(100) == 10


def test_random_control_is_lowest_on_every_metric(blob_data):
    ref, emb, labels = blob_data
    faithful = metrics.score_embedding(emb, ref, labels, seed=0).set_index("metric")
    control = metrics.score_embedding(random_embedding(len(emb)), ref, labels, seed=0)
    control = control.set_index("metric")
    assert list(faithful.index) == list(metrics.METRICS)
    assert faithful["higher_is_better"].all()
    for metric in metrics.METRICS:
        assert control.loc[metric, "value"] < faithful.loc[metric, "value"] - 0.1, metric


def test_same_seed_same_scores(blob_data):
    ref, emb, labels = blob_data
    a = metrics.score_embedding(emb, ref, labels, seed=4, cpd_cells=100, tc_cells=200)
    b = metrics.score_embedding(emb, ref, labels, seed=4, cpd_cells=100, tc_cells=200)
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_subsample_is_fixed_and_noted(blob_data):
    ref, emb, labels = blob_data
    idx = metrics.subsample_indices(600, 100, seed=2)
    assert np.array_equal(idx, metrics.subsample_indices(600, 100, seed=2))
    assert len(np.unique(idx)) == 100
    table = metrics.score_embedding(
        emb, ref, labels, seed=0, knn_query_cells=50, tc_cells=100, silhouette_cells=80
    ).set_index("metric")
    assert table.loc["knn", "n_cells_scored"] == 50
    assert "subsample of 50 query cells" in table.loc["knn", "note"]
    assert table.loc["trustworthiness", "n_cells_scored"] == 100
    assert "subsample of 100 of 600 cells" in table.loc["continuity", "note"]
    assert table.loc["silhouette", "n_cells_scored"] == 80
    assert table.loc["cpd", "n_cells_scored"] == 600


# --- not applicable / bad input ------------------------------------------------------------


def test_single_label_is_not_applicable(blob_data):
    ref, emb, _ = blob_data
    table = metrics.score_embedding(emb, ref, np.full(len(emb), "T cell"), seed=0)
    table = table.set_index("metric")
    for metric in ("knn_accuracy", "knc", "silhouette"):
        assert np.isnan(table.loc[metric, "value"])
        assert table.loc[metric, "note"] == "not applicable: one label"
    for metric in ("knn", "cpd", "trustworthiness", "continuity"):
        assert np.isfinite(table.loc[metric, "value"])
    assert np.isnan(metrics.knn_accuracy(emb, np.zeros(len(emb))))


def test_two_labels_make_knc_not_applicable(blob_data):
    ref, emb, labels = blob_data
    table = metrics.score_embedding(emb, ref, labels % 2, seed=0).set_index("metric")
    assert np.isnan(table.loc["knc", "value"])
    assert table.loc["knc", "note"].startswith("not applicable: 2 labels")
    assert np.isfinite(table.loc["knn_accuracy", "value"])


def test_missing_labels_are_left_out(blob_data):
    ref, emb, labels = blob_data
    with_missing = labels.astype(object)
    with_missing[:60] = None
    table = metrics.score_embedding(emb, ref, with_missing, seed=0).set_index("metric")
    assert table.loc["knn_accuracy", "n_cells_scored"] == 540
    assert "60 cells without a label left out" in table.loc["knn_accuracy", "note"]
    assert table.loc["knn_accuracy", "value"] > 0.9


def test_non_finite_coordinates_give_nan_with_note(blob_data):
    ref, emb, labels = blob_data
    bad = emb.copy()
    bad[3, 0] = np.nan
    bad[7, 1] = np.inf
    table = metrics.score_embedding(bad, ref, labels, seed=0)
    assert table["value"].isna().all()
    assert (table["n_cells_scored"] == 0).all()
    assert table["note"].str.startswith("not scored: 2 of 600 cells").all()


def test_mismatched_arrays_raise(blob_data):
    ref, emb, labels = blob_data
    with pytest.raises(ScdrbenchError, match="embedding has 599 cells but the reference has 600"):
        metrics.score_embedding(emb[:-1], ref, labels, seed=0)
    bad_ref = ref.copy()
    bad_ref[0, 0] = np.nan
    with pytest.raises(ScdrbenchError, match="reference"):
        metrics.score_embedding(emb, bad_ref, labels, seed=0)


# --- main() on tiny h5ad files -------------------------------------------------------------


def write_files(tmp_path, ref, emb, labels, *, names=None, emb_names=None, uns=None):
    import anndata as ad

    names = [f"cell{i}" for i in range(len(ref))] if names is None else names
    emb_names = names if emb_names is None else emb_names
    obs = pd.DataFrame({"label": pd.Categorical([str(x) for x in labels])}, index=names)
    dataset = ad.AnnData(
        X=np.zeros((len(ref), 3), dtype=np.float32), obs=obs, obsm={"X_pca": ref.astype("f4")}
    )
    dataset_path = tmp_path / "pca.h5ad"
    dataset.write_h5ad(dataset_path)
    emb_obs = pd.DataFrame(index=emb_names)
    emb_obs["label"] = pd.Categorical([str(x) for x in labels[: len(emb_names)]])
    uns = {"dataset_id": "blobs", "method_id": "faithful", "seed": 0} if uns is None else uns
    embedding = ad.AnnData(obs=emb_obs, obsm={"X_emb": emb}, uns=uns)
    embedding_path = tmp_path / "faithful.h5ad"
    embedding.write_h5ad(embedding_path)
    return embedding_path, dataset_path


def run_main(embedding_path, dataset_path, output_path, method="faithful"):
    return score.main(
        embedding_path, dataset_path, output_path, dataset="blobs", method=method, seed=0
    )


def test_main_writes_the_contract_table(tmp_path, blob_data):
    ref, emb, labels = blob_data
    embedding_path, dataset_path = write_files(tmp_path, ref, emb, labels)
    output = tmp_path / "metrics" / "blobs" / "faithful.tsv"
    run_main(embedding_path, dataset_path, output)
    table = pd.read_csv(output, sep="\t")
    assert list(table.columns) == score.COLUMNS
    assert list(table["metric"]) == list(metrics.METRICS)
    assert (table["dataset"] == "blobs").all() and (table["method"] == "faithful").all()
    assert (table["seed"] == 0).all()
    assert table.set_index("metric").loc["knn_accuracy", "value"] > 0.9


def test_main_rejects_different_cell_count(tmp_path, blob_data):
    ref, emb, labels = blob_data
    names = [f"cell{i}" for i in range(len(ref))]
    embedding_path, dataset_path = write_files(
        tmp_path, ref, emb[:-5], labels, names=names, emb_names=names[:-5]
    )
    with pytest.raises(ScdrbenchError, match="595 cells") as err:
        run_main(embedding_path, dataset_path, tmp_path / "out.tsv")
    assert str(embedding_path) in str(err.value) and str(dataset_path) in str(err.value)
    assert str(err.value).endswith(
        f"rebuild it with: snakemake --cores 2 --forcerun {embedding_path}"
    )
    assert not (tmp_path / "out.tsv").exists()


def test_main_rejects_different_cell_order(tmp_path, blob_data):
    ref, emb, labels = blob_data
    names = [f"cell{i}" for i in range(len(ref))]
    shuffled = names[1:] + names[:1]
    embedding_path, dataset_path = write_files(
        tmp_path, ref, emb, labels, names=names, emb_names=shuffled
    )
    with pytest.raises(ScdrbenchError, match="different order") as err:
        run_main(embedding_path, dataset_path, tmp_path / "out.tsv")
    assert str(embedding_path) in str(err.value) and str(dataset_path) in str(err.value)


def test_main_rejects_embedding_of_another_job(tmp_path, blob_data):
    ref, emb, labels = blob_data
    embedding_path, dataset_path = write_files(
        tmp_path, ref, emb, labels, uns={"dataset_id": "other", "method_id": "faithful", "seed": 0}
    )
    with pytest.raises(ScdrbenchError, match="dataset_id"):
        run_main(embedding_path, dataset_path, tmp_path / "out.tsv")


def test_main_missing_file_names_it(tmp_path, blob_data):
    ref, emb, labels = blob_data
    embedding_path, dataset_path = write_files(tmp_path, ref, emb, labels)
    with pytest.raises(DamagedInputError, match="nope.h5ad"):  # the supervisor keeps the scores
        run_main(tmp_path / "nope.h5ad", dataset_path, tmp_path / "out.tsv")
    with pytest.raises(DamagedInputError, match="dataset file .*nope.h5ad does not exist; rebuild"):
        run_main(embedding_path, tmp_path / "nope.h5ad", tmp_path / "out.tsv")


def test_main_nan_coordinates_write_nan_rows(tmp_path, blob_data):
    ref, emb, labels = blob_data
    bad = emb.copy()
    bad[0] = np.nan
    embedding_path, dataset_path = write_files(tmp_path, ref, bad, labels)
    output = tmp_path / "out.tsv"
    run_main(embedding_path, dataset_path, output)
    table = pd.read_csv(output, sep="\t")
    assert table["value"].isna().all()
    assert table["note"].str.contains("non-finite").all()


def test_cli_turns_bad_input_into_exit_1(tmp_path, blob_data, capsys):
    ref, emb, labels = blob_data
    names = [f"cell{i}" for i in range(len(ref))]
    embedding_path, dataset_path = write_files(
        tmp_path, ref, emb, labels, names=names, emb_names=names[::-1]
    )
    argv = [
        "--embedding",
        str(embedding_path),
        "--dataset-file",
        str(dataset_path),
        "--output",
        str(tmp_path / "out.tsv"),
        "--dataset",
        "blobs",
        "--method",
        "faithful",
        "--seed",
        "0",
    ]
    # the work itself (the supervised child) stops with one line and exit 1 ...
    with pytest.raises(SystemExit) as exit_info:
        score.cli([*argv, "--child"])
    assert exit_info.value.code == 1
    assert "scdrbench error: embedding" in capsys.readouterr().err
    # ... which the job (the supervisor) records in the metrics file, and goes on
    score.cli(argv)
    table = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    assert table["value"].isna().all()
    assert (
        table["note"]
        .str.contains(
            "score job ended with error: embedding .* lists its cells in a different order"
        )
        .all()
    )


# --- the co-ranking family, density preservation, distance correlation -----------------------


@pytest.fixture
def isometry():
    """A 5-D reference and a rotated, scaled and shifted copy of it: distances kept exactly."""
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(600, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    return ref, 3.0 * ref @ q + 1.0


def test_coranking_metrics_are_perfect_for_an_isometry(isometry):
    ref, emb = isometry
    qnx = metrics.qnx_curve(ref, emb, n=600, seed=0)
    assert len(qnx) == 600 - 2
    np.testing.assert_allclose(qnx, 1.0)
    assert metrics.qnx_auc(qnx) == pytest.approx(1.0)
    lcmc, q_local, q_global = metrics.lcmc_split(qnx)
    assert lcmc == pytest.approx(1 - 1 / 599)
    assert q_local == pytest.approx(1.0) and q_global == pytest.approx(1.0)
    assert metrics.density_preservation(ref, emb, k=30) == pytest.approx(1.0)
    assert metrics.distance_correlation(ref, emb, n=600) == pytest.approx(1.0)


def test_coranking_metrics_are_near_chance_for_random_coordinates(isometry):
    ref, _ = isometry
    emb = np.random.default_rng(1).normal(size=(600, 2))
    qnx = metrics.qnx_curve(ref, emb, n=600, seed=0)
    assert abs(metrics.qnx_auc(qnx)) < 0.05
    lcmc, q_local, q_global = metrics.lcmc_split(qnx)
    assert abs(lcmc) < 0.05
    assert q_local < 0.1
    # Q_NX(K) of a random embedding is K / (m - 1): its mean over the large K is about 0.5
    assert q_global == pytest.approx(0.5, abs=0.05)
    assert abs(metrics.density_preservation(ref, emb, k=30)) < 0.15
    assert metrics.distance_correlation(ref, emb, n=600) < 0.15


def test_new_metrics_rank_a_good_embedding_above_a_bad_one(blob_data):
    ref, emb, labels = blob_data
    bad = np.random.default_rng(3).normal(size=emb.shape)
    good_t = metrics.score_embedding(emb, ref, labels, seed=0).set_index("metric")["value"]
    bad_t = metrics.score_embedding(bad, ref, labels, seed=0).set_index("metric")["value"]
    for metric in ("qnx_auc", "lcmc", "q_local", "density", "dcor"):
        assert good_t[metric] > bad_t[metric] + 0.1, metric


def test_quadratic_metrics_stay_on_their_subsample():
    """Bounded at any size: the co-ranking matrix and distance correlation use a fixed number
    of cells, density the KNN query cells, whatever the number of cells."""
    rng = np.random.default_rng(0)
    ref, emb = rng.normal(size=(6000, 10)), rng.normal(size=(6000, 2))
    assert len(metrics.qnx_curve(ref, emb, n=1500, seed=0)) == 1500 - 2
    table = metrics.score_embedding(
        emb, ref, np.zeros(6000), seed=0, corank_cells=1500, dcor_cells=800, knn_query_cells=700
    ).set_index("metric")
    assert table.loc["qnx_auc", "n_cells_scored"] == 1500
    assert table.loc["dcor", "n_cells_scored"] == 800
    assert table.loc["density", "n_cells_scored"] == 700


def test_every_registered_metric_is_in_the_table(blob_data):
    ref, emb, labels = blob_data
    table = metrics.score_embedding(emb, ref, labels, seed=0)
    assert list(table["metric"]) == list(metrics.METRICS) == [m.name for m in metrics.REGISTRY]
    assert table["value"].notna().all()


def test_knn_classifier_subsamples_only_brute_force_searches(monkeypatch):
    """Above BRUTE_CLASSIFIER_CELLS labelled cells, an embedding of more than 5 dimensions (brute
    force search: the 50-PC positive control at 1.3M cells) is scored on a fixed-seed subsample,
    the same cells for every call; a 2-D embedding is scored on every cell, as before."""
    from scdrbench.metrics import base, labelled, registry

    monkeypatch.setattr(base, "BRUTE_CLASSIFIER_CELLS", 300)
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 400)
    centres = {"a": 0.0, "b": 2.0, "c": 4.0}
    wide = rng.normal(size=(1200, 8)) + np.array([centres[x] for x in labels])[:, None]
    cells = base.classifier_cells(1200, 8, seed=0)
    assert len(cells) == 300 and np.array_equal(cells, base.classifier_cells(1200, 8, seed=0))
    assert len(base.classifier_cells(1200, 2, seed=0)) == 1200
    acc = labelled.knn_accuracy(wide, labels, seed=0)
    assert acc == labelled.knn_accuracy(wide[cells], labels[cells], seed=0)
    assert acc * 300 == round(acc * 300)  # a fraction of the 300 subsampled cells
    flat = wide[:, :2]
    assert labelled.knn_accuracy(flat, labels, seed=0) * 1200 == round(
        labelled.knn_accuracy(flat, labels, seed=0) * 1200
    )
    recall = labelled.knn_recall_per_label(wide, labels, seed=0)
    assert set(recall) == {"a", "b", "c"} and all(0.5 < v <= 1 for v in recall.values())
    table = registry.score_embedding(wide, wide, labels, seed=0, only=[registry.REGISTRY[0]])
    assert table["n_cells_scored"].iloc[0] == 300
    assert "fixed-seed subsample of 300 of 1200 labelled" in table["note"].iloc[0]
    table = registry.score_embedding(flat, wide, labels, seed=0, only=[registry.REGISTRY[0]])
    assert table["n_cells_scored"].iloc[0] == 1200
    assert table["note"].iloc[0].endswith("KD-tree kNN on the labelled cells")
