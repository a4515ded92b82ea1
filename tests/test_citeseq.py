"""CITE-seq in every layout: protein counts checked and protein labels made; the joint RNA +
protein autoencoder; the config refusing protein methods and labels without protein."""

from __future__ import annotations

import copy

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from scdrbench.common.config import ConfigError, validate_config
from scdrbench.common.errors import ScdrbenchError
from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata
from scdrbench.stages.prepare import prepare
from tests.conftest import ROOT

SPEC = SyntheticSpec(n_cells=600, n_genes=300, n_types=4, seed=2, n_antibodies=6)
LABELS = {"from": "adt_clusters", "resolution": 1.0}


@pytest.fixture(scope="module")
def cite():
    adata = simulate_anndata(SPEC)
    rna = np.asarray(adata.X.toarray(), dtype=np.int64)
    adt = adata.obsm["protein_counts"].astype(np.int64)
    return adata, rna, adt


def _geo_csv(path, counts, rows, cols):
    pd.DataFrame(counts.T, index=rows, columns=cols).to_csv(path)


def _tenx_v3(path, rna, adt, barcodes, genes, antibodies):
    import scipy.sparse as sp

    full = sp.csc_matrix(np.hstack([rna, adt]).T)  # features x cells, one column per cell
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.asarray(barcodes, dtype="S")
        g["data"], g["indices"], g["indptr"] = full.data, full.indices, full.indptr
        g["shape"] = np.array(full.shape, dtype=np.int32)
        names = list(genes) + list(antibodies)
        kinds = ["Gene Expression"] * len(genes) + ["Antibody Capture"] * len(antibodies)
        feat = g.create_group("features")
        feat["id"] = np.asarray(names, dtype="S")
        feat["name"] = np.asarray(names, dtype="S")
        feat["feature_type"] = np.asarray(kinds, dtype="S")
        feat["genome"] = np.asarray(["GRCh38"] * len(names), dtype="S")


def _ari(adata, truth):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(truth.loc[adata.obs_names], adata.obs["label"].astype(str))


def test_protein_labels_from_each_layout(tmp_path, cite):
    adata, rna, adt = cite
    bc, genes, abs_ = adata.obs_names, adata.var_names, list(adt.columns)
    truth = adata.obs["cell_type"].astype(str)
    # 1. GEO-style CSVs (genes / antibodies in rows), single species, plain gene symbols
    _geo_csv(tmp_path / "rna.csv", rna, genes, bc)
    _geo_csv(tmp_path / "adt.csv", adt.to_numpy(), abs_, bc)
    # 2. a Cell Ranger v3 HDF5 with Antibody Capture features beside the genes
    _tenx_v3(tmp_path / "cite.h5", rna, adt.to_numpy(), bc, genes, abs_)
    # 3. an h5ad: protein counts in an obsm key, or in a separate h5ad
    counts = ad.AnnData(X=rna.astype(np.float32), obs=pd.DataFrame(index=bc))
    counts.var_names = genes
    counts.obsm["adt"] = adt.astype(np.float32).set_axis(bc)
    counts.write_h5ad(tmp_path / "rna.h5ad")
    ad.AnnData(
        X=adt.to_numpy().astype(np.float32),
        obs=pd.DataFrame(index=bc),
        var=pd.DataFrame(index=abs_),
    ).write_h5ad(tmp_path / "adt.h5ad")
    layouts = {
        "geo_csv": (
            {"source": "geo_csv", "path": "x", "adt_path": "y"},
            {"file": tmp_path / "rna.csv", "adt_file": tmp_path / "adt.csv"},
        ),
        "tenx_h5": (
            {"source": "tenx_h5", "path": "x", "adt_capture": True},
            {"file": tmp_path / "cite.h5"},
        ),
        "h5ad_obsm": (
            {"source": "h5ad", "path": "x", "adt_obsm": "adt"},
            {"file": tmp_path / "rna.h5ad"},
        ),
        "h5ad_file": (
            {"source": "h5ad", "path": "x", "adt_path": "y"},
            {"file": tmp_path / "rna.h5ad", "adt_file": tmp_path / "adt.h5ad"},
        ),
    }
    for name, (entry, inputs) in layouts.items():
        entry = dict(entry, labels=LABELS)
        inputs = {k: str(v) for k, v in inputs.items()}
        out = prepare(name, entry, inputs, seed=0)
        assert out.n_obs == 600, name
        assert list(out.obsm["protein_counts"].columns) == abs_, name
        assert out.obs["label"].nunique() >= 3, name
        assert _ari(out, truth) > 0.5, (name, _ari(out, truth))
        # labels are named by their marker antibodies
        assert all("+" in x or x == "negative" for x in out.obs["label"].astype(str)), name


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.iloc[:300], "only 300 of 600 RNA cells (50%) have protein counts"),
        (lambda a: a.iloc[:, :1], "1 antibody; protein labels and ae_citeseq need at least 2"),
        (lambda a: a.assign(ADT01=-a["ADT01"]), "negative count"),
        (lambda a: a.assign(ADT01=a["ADT01"] + 0.5), "non-integer count 5.5"),
        (lambda a: pd.concat([a, a.iloc[:1]]), "1 duplicated cell barcode(s)"),
    ],
    ids=["barcodes", "one-antibody", "negative", "non-integer", "duplicate"],
)
def test_bad_protein_counts_name_the_file(tmp_path, cite, change, message):
    adata, rna, adt = cite
    _geo_csv(tmp_path / "rna.csv", rna, adata.var_names, adata.obs_names)
    bad = change(adt)
    pd.DataFrame(bad.to_numpy().T, index=bad.columns, columns=bad.index).to_csv(tmp_path / "a.csv")
    entry = {"source": "geo_csv", "path": "x", "adt_path": "y", "labels": LABELS}
    inputs = {"file": str(tmp_path / "rna.csv"), "adt_file": str(tmp_path / "a.csv")}
    with pytest.raises(ScdrbenchError) as err:
        prepare("d", entry, inputs)
    msg = str(err.value)
    assert message in msg and "\n" not in msg
    assert str(tmp_path / "a.csv") in msg  # the ADT file is named


def _paper():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["selection"].update(datasets=["pbmc68k"], methods=["pca", "ae_citeseq"]),
            "ae_citeseq needs protein (ADT) counts and none of the selected data sets (pbmc68k)",
        ),
        (
            lambda c: (
                c["selection"].update(datasets=["pbmc68k"]),
                c["datasets"]["pbmc68k"].update(labels={"from": "adt_clusters"}),
            ),
            "'datasets.pbmc68k.labels': from adt_clusters needs protein counts",
        ),
        (
            lambda c: c["datasets"]["synthetic_citeseq"]["synthetic"].update(n_antibodies=1),
            "'datasets.synthetic_citeseq.synthetic.n_antibodies': 1",
        ),
    ],
)
def test_config_refuses_protein_without_protein(edit, message):
    config = copy.deepcopy(_paper())
    edit(config)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(config)


def test_protein_methods_run_only_where_there_is_protein():
    from scdrbench.common.config import dataset_grid, grid_pairs

    config = _paper()
    config["selection"] = {
        "datasets": ["pbmc68k", "synthetic_citeseq"],
        "methods": ["pca", "ae_citeseq"],
    }
    config = validate_config(config)
    assert grid_pairs(config, dataset_grid(config)) == [
        ("pbmc68k", "pca"),
        ("synthetic_citeseq", "pca"),
        ("synthetic_citeseq", "ae_citeseq"),
    ]


@pytest.mark.slow
def test_ae_citeseq_separates_what_only_the_protein_tells_apart():
    """Two populations with the same RNA and different protein: ae_keras mixes them, the joint
    autoencoder keeps them apart (per-label kNN recall)."""
    from scdrbench.methods import get_method
    from scdrbench.metrics.labelled import knn_recall_per_label
    from scdrbench.stages.preprocess import preprocess

    adata = simulate_anndata(
        SyntheticSpec(n_cells=2000, n_genes=500, n_types=5, seed=1, n_antibodies=8)
    )
    adata.obs["label"] = adata.obs["cell_type"].astype("category")
    params = {
        "target_sum": 1e4,
        "n_hvg": 300,
        "n_pcs": 20,
        "significant_pcs": {"n_permutations": 2, "max_cells": 1000, "quantile": 0.95, "min_pcs": 2},
    }
    pca = preprocess(adata, params=params, labels={"from": "column", "resolution": 1.0}, seed=0)
    X = pca.obsm["X_pca"][:, : pca.uns["n_significant_pcs"]]
    protein = np.asarray(pca.obsm["protein_counts"])
    y = pca.obs["label"].astype(str).to_numpy()
    assert "rna_leiden" in pca.obs  # RNA clusters beside the protein-aware labels
    joint = get_method("ae_citeseq").embed(X, seed=0, protein=protein)
    rna_only = get_method("ae_keras").embed(X, seed=0)
    assert joint.shape == (2000, 2) and np.isfinite(joint).all()
    split = ["type_4_hi", "type_4_lo"]
    r_joint = knn_recall_per_label(joint, y)
    r_rna = knn_recall_per_label(rna_only, y)
    assert min(r_joint[s] for s in split) >= 0.85, r_joint
    assert np.mean([r_joint[s] for s in split]) > np.mean([r_rna[s] for s in split]) + 0.2
    with pytest.raises(ScdrbenchError, match="needs protein"):
        get_method("ae_citeseq").embed(X, seed=0)
