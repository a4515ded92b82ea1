"""Coordinates made elsewhere are scored like any method, without an embedding method running."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods import get_method
from tests.conftest import ROOT

CONFIG = ROOT / "tests" / "config" / "precomputed.yaml"


def _cells(n=400):
    from scdrbench.data.synthetic import SyntheticSpec, barcodes, cell_types

    spec = SyntheticSpec(n_cells=n, n_genes=500, n_types=4, seed=3)
    return barcodes(n), cell_types(spec)


@pytest.mark.workflow
@pytest.mark.slow
def test_precomputed_embedding_is_scored_without_an_embed_method(tmp_path):
    from tests.test_workflow import run_snakemake

    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    names, types = _cells()
    rng = np.random.default_rng(0)
    xy = np.c_[types * 10.0, types % 2 * 10.0] + rng.normal(size=(len(types), 2))
    # shuffled rows, an extra cell, a header: matched by barcode
    df = pd.DataFrame({"barcode": names, "x": xy[:, 0], "y": xy[:, 1]}).sample(
        frac=1, random_state=1
    )
    extra = pd.DataFrame({"barcode": ["NOT-A-CELL-1"], "x": [0.0], "y": [0.0]})
    pd.concat([df, extra]).to_csv(tmp_path / "coords.csv", index=False)
    args = ["--configfile", str(CONFIG), "--cores", "2", "--directory", str(tmp_path)]
    proc = run_snakemake(*args, "results/tables/metrics.tsv")
    log = proc.stdout + proc.stderr
    assert "rule embed_precomputed:" in log
    assert "wildcards: dataset=synthetic_tiny, method=mine" in log
    assert log.count("rule embed_python:") == 1  # the random control only
    metrics = pd.read_csv(tmp_path / "results/tables/metrics.tsv", sep="\t")
    mine = metrics[metrics["method"] == "mine"].set_index("metric")["value"]
    rand = metrics[metrics["method"] == "random"].set_index("metric")["value"]
    assert mine["knn_accuracy"] > 0.95 > rand["knn_accuracy"]
    # a new file re-scores it
    pd.concat([df.assign(x=df["x"] * 2), extra]).to_csv(tmp_path / "coords.csv", index=False)
    proc = run_snakemake(*args, "-n", "results/tables/metrics.tsv")
    assert "rule embed_precomputed:" in proc.stdout


def _write(tmp_path, df, name="c.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda n: pd.DataFrame({"b": n[:-5], "x": 1.0, "y": 2.0}),
            "5 of the data set's 50 cells are not in it",
        ),
        (
            lambda n: pd.DataFrame({"b": n, "x": [np.nan] + [1.0] * 49, "y": 2.0}),
            "1 cells have NaN",
        ),
        (lambda n: pd.DataFrame({"b": n, "x": 1.0}), "1 coordinate column(s); at least 2"),
        (
            lambda n: pd.DataFrame({"b": list(n[:-1]) + [n[0]], "x": 1.0, "y": 2.0}),
            "is listed twice",
        ),
    ],
    ids=["barcodes-missing", "nan", "one-column", "duplicate"],
)
def test_bad_precomputed_files_name_the_file_and_the_problem(tmp_path, make, message):
    names = np.array([f"cell{i}" for i in range(50)], dtype=object)
    path = _write(tmp_path, make(names))
    with pytest.raises(ScdrbenchError) as err:
        get_method("precomputed").embed(np.zeros((50, 3)), seed=0, obs_names=names, path=path)
    assert str(err.value).startswith(f"precomputed embedding {path}: ")
    assert message in str(err.value)


def test_precomputed_h5ad_obsm(tmp_path):
    import anndata as ad

    names = np.array([f"cell{i}" for i in range(30)], dtype=object)
    coords = np.random.default_rng(0).normal(size=(30, 3))
    adata = ad.AnnData(obs=pd.DataFrame(index=names[::-1]), obsm={"X_mine": coords[::-1]})
    adata.write_h5ad(tmp_path / "e.h5ad")
    method = get_method("precomputed")
    out = method.embed(
        np.zeros((30, 3)), seed=0, obs_names=names, path=str(tmp_path / "e.h5ad"), obsm_key="X_mine"
    )
    np.testing.assert_allclose(out, coords[:, :2], rtol=1e-6)
    with pytest.raises(ScdrbenchError, match=r"no obsm\['X_emb'\] \(it has X_mine\)"):
        method.embed(np.zeros((30, 3)), seed=0, obs_names=names, path=str(tmp_path / "e.h5ad"))
