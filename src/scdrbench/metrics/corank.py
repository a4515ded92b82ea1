"""Metrics the field uses since the essay: the co-ranking family, density preservation and
distance correlation, each bounded in time and memory at 1.3M cells.

- Co-ranking (Lee & Verleysen 2009): on a fixed-seed subsample of ``CORANK_CELLS`` cells (the
  co-ranking matrix is quadratic in it: 2,000 cells, two 2,000 x 2,000 rank matrices, ~100 MB),
  Q_NX(K) is the mean fraction of each cell's K nearest neighbours kept, for every K. From it:
  ``qnx_auc``, the area under R_NX(K) = ((m-1) Q_NX(K) - K) / (m-1-K) on a log K scale (Lee,
  Peluffo-Ordonez & Verleysen 2015: 1 for an isometry, about 0 for a random embedding);
  ``lcmc``, the largest local continuity meta-criterion LCMC(K) = Q_NX(K) - K/(m-1) (Chen &
  Buja 2009), whose K is K_max; ``q_local`` and ``q_global``, the mean Q_NX(K) for K up to and
  above K_max (Lee & Verleysen 2009). Q_NX tends to 1 at large K for any embedding, so
  ``q_global`` of a random embedding is about 0.5, not 0: its scaled score takes that out.
- ``density``: Pearson correlation of each cell's log local radius (its mean distance to its
  ``DENSITY_K`` nearest neighbours) in the reference and in the embedding, over the same query
  cells as KNN (neighbours among all cells): densMAP's measure of density preservation (Narayan,
  Berger & Cho 2021). 1 for an isometry (any scale), about 0 for a random embedding.
- ``dcor``: distance correlation (Szekely, Rizzo & Bakirov 2007, the ``dcor`` package) of the
  reference and the embedding on ``DCOR_CELLS`` fixed-seed landmark cells.
"""

from __future__ import annotations

import numpy as np

from scdrbench.metrics.base import (
    CORANK_CELLS,
    DCOR_CELLS,
    DENSITY_K,
    KNN_QUERY_CELLS,
    subsample_indices,
)


def _ranks(x: np.ndarray) -> np.ndarray:
    """``R[i, j]``: rank of cell j in cell i's distance ordering (0 = itself), int32."""
    from scipy.spatial.distance import cdist

    d = cdist(x, x)
    np.fill_diagonal(d, -1.0)  # itself first, also among duplicates
    order = np.argsort(d, axis=1, kind="stable")
    ranks = np.empty(order.shape, dtype=np.int32)
    rows = np.arange(len(x))[:, None]
    ranks[rows, order] = np.arange(len(x), dtype=np.int32)[None, :]
    return ranks


def qnx_curve(ref, emb, *, n: int = CORANK_CELLS, seed: int = 0) -> np.ndarray:
    """Q_NX(K) for K = 1 ... m-2 on a fixed-seed subsample of ``m = min(n, n_cells)`` cells.

    Q_NX(K) = (1 / (K m)) x the number of pairs (i, j) where j is among i's K nearest in both
    spaces: a pair is in both K-neighbourhoods exactly when the larger of its two ranks is at
    most K, so one count of those maxima and a cumulative sum give every K at once.
    """
    idx = subsample_indices(np.shape(ref)[0], n, seed)
    m = len(idx)
    if m < 4:
        return np.array([])
    r_ref = _ranks(np.asarray(ref)[idx].astype(np.float64))
    r_emb = _ranks(np.asarray(emb)[idx].astype(np.float64))
    both = np.maximum(r_ref, r_emb)
    del r_ref, r_emb
    counts = np.bincount(both.ravel(), minlength=m)
    counts[0] -= m  # the diagonal (each cell itself, rank 0 in both)
    k = np.arange(1, m - 1)
    return np.cumsum(counts)[1 : m - 1] / (k * m)


def qnx_auc(qnx: np.ndarray) -> float:
    """Area under R_NX(K) on a log K scale (weights 1/K), from :func:`qnx_curve`."""
    if len(qnx) == 0:
        return float("nan")
    m = len(qnx) + 2
    k = np.arange(1, m - 1)
    rnx = ((m - 1) * qnx - k) / (m - 1 - k)
    return float(np.sum(rnx / k) / np.sum(1.0 / k))


def lcmc_split(qnx: np.ndarray) -> tuple[float, float, float]:
    """``(max LCMC, Q_local, Q_global)`` from :func:`qnx_curve` (K_max = argmax LCMC)."""
    if len(qnx) == 0:
        return float("nan"), float("nan"), float("nan")
    m = len(qnx) + 2
    k = np.arange(1, m - 1)
    lcmc = qnx - k / (m - 1)
    k_max = int(np.argmax(lcmc))  # index: K = k_max + 1
    local = float(qnx[: k_max + 1].mean())
    outer = qnx[k_max + 1 :]
    return float(lcmc[k_max]), local, float(outer.mean()) if len(outer) else float("nan")


def density_preservation(
    ref,
    emb,
    *,
    k: int = DENSITY_K,
    max_query_cells: int | None = KNN_QUERY_CELLS,
    seed: int = 0,
    n_jobs=None,
    neighbours=None,
) -> float:
    """Pearson correlation of log local radii (mean distance to the ``k`` nearest neighbours).

    ``neighbours`` may give the precomputed ``(distances_ref, distances_emb)`` of the query cells
    (k or more columns, self excluded), as :mod:`scdrbench.metrics.registry` shares them with KNN.
    """
    from scdrbench.metrics.base import neighbour_distances

    n = np.shape(ref)[0]
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    if neighbours is None:
        query = subsample_indices(n, max_query_cells, seed)
        d_ref = neighbour_distances(np.asarray(ref), query, k, n_jobs=n_jobs)[1]
        d_emb = neighbour_distances(np.asarray(emb), query, k, n_jobs=n_jobs)[1]
    else:
        d_ref, d_emb = neighbours
    r_ref = np.log(np.asarray(d_ref)[:, :k].mean(axis=1) + 1e-12)
    r_emb = np.log(np.asarray(d_emb)[:, :k].mean(axis=1) + 1e-12)
    if np.ptp(r_ref) == 0 or np.ptp(r_emb) == 0:
        return float("nan")
    return float(np.corrcoef(r_ref, r_emb)[0, 1])


def distance_correlation(ref, emb, *, n: int = DCOR_CELLS, seed: int = 0) -> float:
    """Distance correlation of the two spaces on ``n`` fixed-seed landmark cells (``dcor``)."""
    from scdrbench.common.runtime import numba_compile_lock

    idx = subsample_indices(np.shape(ref)[0], n, seed)
    if len(idx) < 3:
        return float("nan")
    x = np.asarray(ref)[idx].astype(np.float64)
    y = np.asarray(emb)[idx].astype(np.float64)
    if np.ptp(y) == 0:
        return float("nan")
    # dcor compiles numba code into its on-disk cache when imported and at its first call
    with numba_compile_lock():
        import dcor

        return float(dcor.distance_correlation(x, y))
