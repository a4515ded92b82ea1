"""Prepare (counts + labels) and preprocess (HVG, PCA, significant PCs) on generated data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata, simulate_chunks
from scdrbench.stages.prepare import attach_labels, check_counts, prepare, read_pbmc68k
from scdrbench.stages.preprocess import preprocess, significant_pcs, subsample

PARAMS = {
    "target_sum": 1e4,
    "n_hvg": 200,
    "n_pcs": 20,
    "significant_pcs": {"n_permutations": 3, "max_cells": 300, "quantile": 0.95, "min_pcs": 2},
}


def test_pbmc68k_counts_are_integers_with_labels():
    adata = read_pbmc68k()
    assert adata.shape == (700, 765)
    assert np.all(adata.X.data == np.round(adata.X.data))
    assert adata.X.data.min() >= 1
    assert adata.obs["bulk_labels"].nunique() == 10


def test_prepare_pbmc68k_contract():
    entry = {"source": "scanpy_pbmc68k", "labels": {"from": "column", "column": "bulk_labels"}}
    adata = prepare("pbmc68k", entry, {})
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert adata.obs["label"].dtype == "category"
    assert adata.uns["provenance"]["source"] == "scanpy_pbmc68k"


def test_synthetic_is_seeded_and_chunk_independent():
    spec = SyntheticSpec(n_cells=500, n_genes=100, n_types=3, seed=4, chunk_size=200)
    a = sp.vstack([c for c, _ in simulate_chunks(spec)])
    b = sp.vstack([c for c, _ in simulate_chunks(spec)])
    assert (a != b).nnz == 0
    other = sp.vstack([c for c, _ in simulate_chunks(SyntheticSpec(500, 100, 3, seed=5))])
    assert (a != other).nnz > 0
    sparsity = 1 - a.nnz / (a.shape[0] * a.shape[1])
    assert 0.3 < sparsity < 0.99  # UMI-like: mostly zeros, not empty


def test_synthetic_lineages_give_global_structure():
    """Sister types (one lineage) are closer to each other than to types of other lineages."""
    spec = SyntheticSpec(n_cells=3000, n_genes=1000, n_types=6, seed=3)
    adata = simulate_anndata(spec)
    assert spec.lineage_count() == 2
    pairs = adata.obs.groupby("cell_type", observed=True)["lineage"].agg(lambda s: s.unique()[0])
    assert pairs.to_dict() == {f"type_{t}": f"lineage_{t // 3}" for t in range(6)}
    X = np.log1p(adata.X.toarray() / adata.X.sum(1).A * 1e4)
    types = adata.obs["cell_type"].cat.codes.to_numpy()
    cent = np.stack([X[types == t].mean(0) for t in range(6)])
    dist = np.linalg.norm(cent[:, None] - cent[None], axis=-1)
    lineage = np.arange(6) // 3
    same = lineage[:, None] == lineage[None]
    off = ~np.eye(6, dtype=bool)
    assert dist[same & off].max() < dist[~same].min()
    # one lineage (up to 3 types): no shared programme, the types are as before
    assert SyntheticSpec(n_types=3).lineage_count() == 1
    assert SyntheticSpec(n_types=8, n_lineages=2).lineage_count() == 2


def test_missing_label_column_names_the_key(tiny_counts):
    with pytest.raises(ScdrbenchError, match=r"labels column 'celltype' not found.*labels\.column"):
        attach_labels(tiny_counts, {"from": "column", "column": "celltype"}, source_name="x")


def test_non_integer_counts_rejected(tiny_counts):
    tiny_counts.X = tiny_counts.X * 0.5
    with pytest.raises(ScdrbenchError, match="non-integer"):
        check_counts(tiny_counts, source_name="x")


def test_negative_counts_rejected(tiny_counts):
    tiny_counts.X.data[0] = -1
    with pytest.raises(ScdrbenchError, match="non-negative"):
        check_counts(tiny_counts, source_name="x")


def test_duplicated_barcodes_rejected(tiny_counts):
    names = tiny_counts.obs_names.to_list()
    names[5] = names[4]
    tiny_counts.obs_names = names
    with pytest.raises(ScdrbenchError, match="duplicated cell barcode"):
        check_counts(tiny_counts, source_name="x")


def test_zero_count_cells_dropped(tiny_counts, caplog):
    X = tiny_counts.X.tolil()
    X[7, :] = 0
    tiny_counts.X = X.tocsr()
    out = check_counts(tiny_counts, source_name="x")
    assert out.n_obs == tiny_counts.n_obs - 1
    assert "dropping 1 cells with zero counts" in caplog.text


def test_significant_pcs_finds_the_cluster_structure():
    # 5 cell types span a 4-dimensional subspace of mean differences: ~4 significant PCs.
    adata = simulate_anndata(SyntheticSpec(n_cells=1500, n_genes=300, n_types=5, seed=2))
    X = np.log1p(adata.X.toarray() / adata.X.sum(1).A * 1e4)
    res = significant_pcs(X, n_pcs=20, n_permutations=5, max_cells=1500, seed=0)
    assert 3 <= res["n_significant"] <= 6
    assert res["real_variance"][0] > res["null_threshold"][0]
    noise = np.random.default_rng(0).normal(size=(500, 40))
    assert significant_pcs(noise, n_pcs=10, n_permutations=5)["n_significant_raw"] <= 1


def test_preprocess_contract(tiny_counts):
    before = tiny_counts.X.copy()
    out = preprocess(tiny_counts, params=PARAMS, labels={"from": "column"}, seed=0)
    assert (tiny_counts.X != before).nnz == 0  # input not modified
    assert out.shape == (300, 200)
    assert out.obsm["X_pca"].shape == (300, 20)
    assert out.obsm["X_pca"].dtype == np.float32
    assert 2 <= out.uns["n_significant_pcs"] <= 20
    assert out.uns["n_genes"] == 400
    assert list(out.obs["label"].cat.categories) == ["type_0", "type_1", "type_2"]


def test_fewer_cells_than_pcs_says_so(tiny_counts, caplog):
    few = tiny_counts[:20].copy()
    out = preprocess(few, params={**PARAMS, "n_pcs": 50}, labels={"from": "column"}, seed=0)
    assert out.obsm["X_pca"].shape == (20, 19)
    assert "preprocess.n_pcs 50 lowered to 19: 20 cells x 200 genes" in caplog.text
    assert "set preprocess.n_pcs to 19 or fewer" in caplog.text


def test_warnings_reach_the_log_file_and_the_console(tmp_path, capfd):
    import logging

    from scdrbench.common.runtime import setup_logging

    setup_logging(str(tmp_path / "job.log"))
    logging.getLogger("scdrbench.x").info("only in the file")
    logging.getLogger("scdrbench.x").warning("in both")
    err = capfd.readouterr().err
    assert "scdrbench warning: in both" in err and "only in the file" not in err
    text = (tmp_path / "job.log").read_text()
    assert "only in the file" in text and "WARNING scdrbench.x: in both" in text
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])


def test_preprocess_leiden_labels_are_recorded(tiny_counts):
    out = preprocess(tiny_counts, params=PARAMS, labels={"from": "leiden", "resolution": 0.5})
    assert out.obs["label"].str.startswith("leiden_").all()
    assert out.uns["labels_from"].startswith("leiden")
    assert out.obs["label"].nunique() >= 2


def test_subsample_is_seeded_and_ordered(tiny_counts):
    out = preprocess(tiny_counts, params=PARAMS, labels={"from": "column"})
    a, b = subsample(out, 100, seed=1), subsample(out, 100, seed=1)
    assert a.n_obs == 100 and list(a.obs_names) == list(b.obs_names)
    idx = out.obs_names.get_indexer(a.obs_names)
    assert np.all(np.diff(idx) > 0)
    with pytest.raises(ScdrbenchError, match="subsample of 1000 cells"):
        subsample(out, 1000)


def test_subsample_file_reads_the_parent_backed_and_matches(tiny_counts, tmp_path):
    from scdrbench.stages.preprocess import main_subsample

    out = preprocess(tiny_counts, params=PARAMS, labels={"from": "column"})
    parent = tmp_path / "pca.h5ad"
    out.write_h5ad(parent)
    main_subsample(parent, tmp_path / "sub.h5ad", size=120, seed=3)
    sub = ad.read_h5ad(tmp_path / "sub.h5ad")
    ref = subsample(out, 120, seed=3)
    assert list(sub.obs_names) == list(ref.obs_names)
    np.testing.assert_array_equal(sub.obsm["X_pca"], ref.obsm["X_pca"])
    assert (sub.X != ref.X).nnz == 0
    assert list(sub.obs["label"]) == list(ref.obs["label"])
    assert sub.uns["subsample"] == {"size": 120, "of": out.n_obs, "seed": 3}
    assert sub.uns["n_significant_pcs"] == out.uns["n_significant_pcs"]


def test_prepare_unknown_label_source_column(tiny_counts):
    ad_ = ad.AnnData(X=tiny_counts.X, obs=pd.DataFrame(index=tiny_counts.obs_names))
    with pytest.raises(ScdrbenchError, match="none"):
        attach_labels(ad_, {"from": "column", "column": "x"}, source_name="x")


@pytest.mark.parametrize("route", ["memory", "stream"])
def test_n_hvg_above_the_gene_count_says_so_once(tiny_counts, tmp_path, capfd, route):
    import logging

    from scdrbench.common.io import write_h5ad
    from scdrbench.stages.preprocess import main

    counts, out, log = tmp_path / "counts.h5ad", tmp_path / "pca.h5ad", tmp_path / "pp.log"
    write_h5ad(tiny_counts, str(counts))
    params = {**PARAMS, "n_hvg": 1000}
    main(
        str(counts),
        str(out),
        params=params,
        labels={"from": "column"},
        log_path=str(log),
        route=route,
    )
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    assert ad.read_h5ad(out).n_vars == 400  # every gene kept
    line = (
        f"config key 'preprocess.n_hvg' = 1,000 is more than the 400 genes of {counts}; using "
        "all 400 (set preprocess.n_hvg to 400 or fewer to silence this)"
    )
    assert log.read_text().count(line) == 1
    err = [e for e in capfd.readouterr().err.splitlines() if "n_hvg" in e]
    assert err == [f"scdrbench warning: {line}"]
