"""Shared pieces of the metrics: sizes, fixed-seed subsamples, labels, exact neighbours.

Nothing is quadratic in the number of cells: metrics that need all pairwise distances run on a
fixed-seed subsample, and the neighbourhood metrics use exact tree or chunked brute-force kNN
searches (scikit-learn), so 1.3M cells fit in a few GB. The subsample of a given size depends
only on (number of cells, size, seed), so every method of a dataset is scored on the same cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Default sizes.
K_NEIGHBOURS = 10  # kNN accuracy, KNN, KNC (at most)
CV_FOLDS = 5
KNN_QUERY_CELLS = 10_000  # KNN: exact neighbours of this many query cells among all cells
CPD_CELLS = 1_000
TC_CELLS = 5_000  # trustworthiness / continuity
TC_K = 30
SILHOUETTE_CELLS = 10_000

# Chunk size of scikit-learn's chunked distance computations (silhouette, brute-force kNN); its
# default, 1024 MB, would dominate the peak memory of small data sets.
CORANK_CELLS = 2_000  # co-ranking matrix (quadratic in this)
DENSITY_K = 30  # neighbours of the local radius (densMAP's)
DCOR_CELLS = 1_000  # distance correlation landmarks

# Chunk size of scikit-learn's chunked distance computations (silhouette, brute-force kNN); its
# default, 1024 MB, would dominate the peak memory of small data sets.
SKLEARN_WORKING_MEMORY_MB = 256

# Up to this many dimensions a KD-tree is exact and fast; above it, chunked brute force (exact).
_TREE_MAX_DIMS = 5
#: The k-NN classifier (kNN accuracy, per-label recall) on an embedding of more than
#: ``_TREE_MAX_DIMS`` dimensions searches by brute force, quadratic in the cells: above this many
#: labelled cells it runs on a fixed-seed subsample of them (the 50-PC positive control at 1.3M
#: cells would take hours per label set; every 2-D embedding is scored on all cells).
BRUTE_CLASSIFIER_CELLS = 100_000


def classifier_cells(n: int, n_dims: int, seed: int) -> np.ndarray:
    """The labelled cells (indices into them) the k-NN classifier scores: all of them, or a
    fixed-seed subsample of :data:`BRUTE_CLASSIFIER_CELLS` when the search is brute force."""
    if n_dims <= _TREE_MAX_DIMS:
        return np.arange(n)
    return subsample_indices(n, BRUTE_CLASSIFIER_CELLS, seed)


def subsample_indices(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed-seed random subsample of ``size`` of ``n`` cells (all if fewer).

    The result depends only on ``(n, size, seed)``: every method of a dataset gets the same cells.
    """
    if size is None or n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


#: The label of a cell without one (prepare writes it for cells a labels file does not list).
UNLABELLED = "unlabelled"
#: Label values that mean "no label" (compared stripped and lower-cased; NaN/None too): such
#: cells are left out of every label metric, never scored as a class of their own.
MISSING_LABELS = frozenset({"", "nan", "none", UNLABELLED, "unlabeled"})


def is_missing_label(value) -> bool:
    """True for a missing label: None/NaN, empty, ``"nan"``, ``"unlabelled"`` (any case)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return True
    return str(value).strip().lower() in MISSING_LABELS


def encode_labels(labels) -> tuple[np.ndarray, int]:
    """Integer codes of ``labels`` (-1 where missing, see :func:`is_missing_label`) and the
    number of distinct labels."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(labels, dtype=object)), sort=True)
    missing = np.array([is_missing_label(u) for u in uniques], dtype=bool)
    if missing.any():
        # renumber the labels that remain 0..n-1; missing ones (and factorize's -1) become -1
        remap = np.full(len(uniques) + 1, -1, dtype=np.int64)
        remap[np.flatnonzero(~missing)] = np.arange(int((~missing).sum()))
        codes = remap[codes]  # -1 indexes the last slot, which stays -1
        return codes.astype(np.int64), int((~missing).sum())
    return codes.astype(np.int64), len(uniques)


def label_problem(labels, *, min_classes: int = 2) -> str | None:
    """Why a label-based metric is not applicable (None when it is)."""
    codes, n_classes = encode_labels(labels)
    if n_classes == 0:
        return "not applicable: no labels"
    if n_classes == 1:
        return "not applicable: one label"
    if n_classes < min_classes:
        return f"not applicable: {n_classes} labels, needs at least {min_classes}"
    return None


def _nn_algorithm(n_dims: int) -> str:
    return "kd_tree" if n_dims <= _TREE_MAX_DIMS else "brute"


def neighbour_distances(
    data: np.ndarray, query_idx: np.ndarray, k: int, *, n_jobs: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours of ``data[query_idx]`` among all of ``data``, self excluded:
    ``(indices, distances)``, each ``(len(query_idx), k)``, nearest first.

    Asks for ``k + 1`` and drops the query cell itself; when duplicates push it out of the list,
    the farthest of the ``k + 1`` is dropped instead.
    """
    from sklearn.neighbors import NearestNeighbors

    k1 = min(k + 1, data.shape[0])
    nn = NearestNeighbors(n_neighbors=k1, algorithm=_nn_algorithm(data.shape[1]), n_jobs=n_jobs)
    nn.fit(data)
    dist, ind = nn.kneighbors(data[query_idx])
    drop = ind == query_idx[:, None]
    no_self = ~drop.any(axis=1)
    drop[no_self, -1] = True
    shape = (len(query_idx), k1 - 1)
    return ind[~drop].reshape(shape), dist[~drop].reshape(shape)


def _neighbours_excluding_self(
    data: np.ndarray, query_idx: np.ndarray, k: int, *, n_jobs: int | None = None
) -> np.ndarray:
    """The indices of :func:`neighbour_distances`."""
    return neighbour_distances(data, query_idx, k, n_jobs=n_jobs)[0]


def _overlap_fraction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the fraction of the entries of ``a`` that also occur in the same row of ``b``."""
    hits = np.zeros(a.shape[0], dtype=np.int64)
    for start in range(0, a.shape[0], 100_000):  # bounds the (rows, k, k) temporary
        aa, bb = a[start : start + 100_000], b[start : start + 100_000]
        hits[start : start + len(aa)] = (aa[:, :, None] == bb[:, None, :]).any(axis=2).sum(axis=1)
    return hits / a.shape[1]
