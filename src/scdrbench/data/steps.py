"""Preprocessing steps shared by both routes and the CITE-seq reader: the HVG count, the
significant-PC test, the PCA kNN graph and Leiden labels.

Used by the in-memory route (:mod:`scdrbench.stages.preprocess`), the streamed route
(:mod:`scdrbench.data.stream`) and the protein labels of CITE-seq data (:mod:`scdrbench.data.citeseq`);
it imports none of them, so the three do not import each other.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scdrbench.common.runtime import import_umap_without_tensorflow

log = logging.getLogger("scdrbench.preprocess")


def warn_n_hvg(n_hvg: int, n_genes: int, *, where: str) -> int:
    """The number of HVGs to keep: ``n_hvg``, or all ``n_genes`` with one warning line when
    ``n_hvg`` (config key ``preprocess.n_hvg``) asks for more genes than ``where`` has."""
    if n_hvg <= n_genes:
        return n_hvg
    log.warning(
        "config key 'preprocess.n_hvg' = %s is more than the %s genes of %s; using all %s "
        "(set preprocess.n_hvg to %s or fewer to silence this)",
        f"{n_hvg:,}",
        f"{n_genes:,}",
        where,
        f"{n_genes:,}",
        f"{n_genes:,}",
    )
    return n_genes


def _top_variances(X: np.ndarray, n_pcs: int, seed: int) -> np.ndarray:
    """Variances along the leading ``n_pcs`` principal axes of dense ``X`` (centred here)."""
    from sklearn.decomposition import PCA

    k = min(n_pcs, min(X.shape) - 1)
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed)
    pca.fit(X)
    return pca.explained_variance_


def significant_pcs(
    X,
    *,
    n_pcs: int = 50,
    n_permutations: int = 10,
    quantile: float = 0.95,
    max_cells: int = 10_000,
    min_pcs: int = 2,
    seed: int = 0,
) -> dict:
    """Count significant PCs by permutation (the essay; Buja & Eyuboglu 1992).

    Each gene's values are shuffled across cells independently, destroying the correlations
    between genes but keeping each gene's distribution; the leading PCs of the real matrix are
    significant while their variance beats the ``quantile`` of the same-rank PC's variance over
    ``n_permutations`` shuffled matrices. Runs on a fixed-seed subsample of ``max_cells`` cells.

    Returns a dict with ``n_significant`` (at least ``min_pcs``), the real and permuted
    variances and the subsample size.
    """
    rng = np.random.default_rng([seed, 11])
    n = X.shape[0]
    rows = np.sort(rng.choice(n, size=max_cells, replace=False)) if n > max_cells else np.arange(n)
    sub = X[rows]
    sub = sub.toarray() if sp.issparse(sub) else np.array(sub)
    sub = sub.astype(np.float32, copy=False)
    real = _top_variances(sub, n_pcs, seed)
    null = np.empty((n_permutations, real.size))
    for i in range(n_permutations):
        null[i] = _top_variances(rng.permuted(sub, axis=0), n_pcs, seed + i + 1)
    threshold = np.quantile(null, quantile, axis=0)
    beats = real > threshold
    n_sig = int(np.argmin(beats)) if not beats.all() else int(beats.size)
    return {
        "n_significant": max(n_sig, min_pcs),
        "n_significant_raw": n_sig,
        "real_variance": real.astype(np.float64),
        "null_threshold": threshold.astype(np.float64),
        "n_cells_tested": int(rows.size),
        "n_permutations": int(n_permutations),
        "quantile": float(quantile),
    }


def knn_transformer(n_obs: int, *, n_neighbors: int = 15, seed: int = 0):
    """scanpy's default pynndescent kNN transformer, returning ``csr_matrix``.

    pynndescent 0.7 with scipy >= 1.15 returns a ``csr_array`` for larger data, which scanpy
    1.11's neighbours code cannot read (no ``getnnz``); the settings are scanpy's defaults
    (UMAP's), so the graph is the one ``sc.pp.neighbors`` would build.
    """
    from pynndescent import PyNNDescentTransformer

    class _Transformer(PyNNDescentTransformer):
        def fit_transform(self, X, y=None, **kw):
            return sp.csr_matrix(super().fit_transform(X, y, **kw))

        def transform(self, X, y=None):
            return sp.csr_matrix(super().transform(X, y))

    return _Transformer(
        n_neighbors=n_neighbors,
        metric="euclidean",
        random_state=seed,
        n_trees=min(64, 5 + round(n_obs**0.5 / 20.0)),
        n_iters=max(5, round(np.log2(n_obs))),
    )


def leiden_labels(adata, *, resolution: float = 1.0, seed: int = 0) -> pd.Categorical:
    """Leiden clusters of the kNN graph (15 neighbours) in PCA space, as ``leiden_<k>``."""
    import scanpy as sc

    tmp = sc.AnnData(obsm={"X_pca": adata.obsm["X_pca"]}, obs=pd.DataFrame(index=adata.obs_names))
    import_umap_without_tensorflow()
    sc.pp.neighbors(
        tmp, use_rep="X_pca", random_state=seed, transformer=knn_transformer(tmp.n_obs, seed=seed)
    )
    sc.tl.leiden(tmp, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2)
    return pd.Categorical("leiden_" + tmp.obs["leiden"].astype(str))
