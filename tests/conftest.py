"""Shared fixtures: tiny seeded data generated here (no network, no ../shared needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def method_cases(neural: bool) -> dict[str, dict]:
    """``{algorithm: its TEST_PARAMS}`` of the algorithms the generic method tests run, from the
    registry (src/scdrbench/methods): those that import TensorFlow (tests/test_methods_nn.py,
    ``neural``) or the others (tests/test_methods_python.py). Algorithms that need more than
    the matrix (protein counts, cell names) are in neither: tests/test_registry.py names the
    test file of each."""
    from scdrbench.methods import ALGORITHMS, get_method

    cases = {}
    for name in ALGORITHMS:
        module = get_method(name)
        if getattr(module, "NEEDS_PROTEIN", False) or getattr(module, "NEEDS_OBS_NAMES", False):
            continue
        tops = {b.split(".")[0] for b in module.BACKEND_MODULES}
        # a module without TEST_PARAMS has no test: tests/test_registry.py fails on it
        if hasattr(module, "TEST_PARAMS") and ("tensorflow" in tops) == neural:
            cases[name] = module.TEST_PARAMS
    return cases


def make_blobs(n_per=70, n_classes=3, dims=50, sep=8.0, seed=0):
    """Well-separated Gaussian blobs: ``(X float32, labels int)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, sep, size=(n_classes, dims))
    X = np.concatenate([c + rng.normal(size=(n_per, dims)) for c in centres])
    y = np.repeat(np.arange(n_classes), n_per)
    return X.astype(np.float32), y


def write_pca_file(path: Path, X: np.ndarray, y, *, n_significant_pcs: int, n_genes: int):
    """A data set's ``pca.h5ad`` as preprocess writes it: ``X_pca``, labels, the PC count."""
    import anndata as ad
    import pandas as pd

    adata = ad.AnnData(
        X=np.zeros((X.shape[0], 3), dtype=np.float32),
        obs=pd.DataFrame(
            {"label": pd.Categorical(np.asarray(y).astype(str))},
            index=[f"c{i}" for i in range(len(y))],
        ),
    )
    adata.obsm["X_pca"] = X
    adata.uns["n_significant_pcs"] = n_significant_pcs
    adata.uns["n_genes"] = n_genes
    path.parent.mkdir(parents=True)
    adata.write_h5ad(path)
    return path


@pytest.fixture
def blobs():
    """About 200 x 50: three separable blobs."""
    return make_blobs()


@pytest.fixture
def tiny_counts():
    """A 300-cell x 400-gene simulated counts AnnData with 3 cell types."""
    from scdrbench.data.synthetic import SyntheticSpec, simulate_anndata

    adata = simulate_anndata(SyntheticSpec(n_cells=300, n_genes=400, n_types=3, seed=1))
    adata.obs["label"] = adata.obs["cell_type"].astype("category")
    return adata


def knn_accuracy(emb, labels, k=10):
    """5-fold cross-validated 10-NN accuracy (the quality bar used across tests)."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return cross_val_score(KNeighborsClassifier(k), emb, labels, cv=5).mean()


def can_in_mount_namespace(script: str) -> bool:
    """Whether ``script`` (mount commands) succeeds as root in a private mount namespace."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return (
        subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True).returncode == 0
    )
