"""Score a 2-D embedding against the dataset's 50-PC reference: the benchmark's quality metrics.

Definitions are in ``DESIGN.md`` ("Quality metrics"); every public function below is pure
(arrays in, a number out) and cites its reference. Nothing is quadratic in the number of cells:
metrics that need all pairwise distances run on a fixed-seed subsample, and the neighbourhood
metrics use exact tree or chunked brute-force kNN searches (scikit-learn), so 1.3M cells fit in a
few GB. The subsample of a given size depends only on (number of cells, size, seed), so every
method of a dataset is scored on the same cells.

``score_embedding`` runs them all and returns a tidy table; ``main`` reads the embedding and the
dataset's ``pca.h5ad``, checks that they describe the same cells in the same order and writes
``results/metrics/{dataset}/{method}.tsv``.

Non-finite coordinates: a method that diverges (NaN/inf) gets every metric reported as NaN with a
note saying how many cells were affected, instead of an error. A diverged embedding is a result
of the method, and the summary table and figure should show it as a failure next to the other
methods rather than stop the workflow. Scoring only the finite cells would flatter a method
that failed on some of them, so it is not done. A non-finite *reference* is a bug of the
preprocessing step and raises an error naming the file.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from scripts.common.errors import ScdrbenchError, cli_errors

log = logging.getLogger("scdrbench.metrics")

#: Metric ids in table order. All are "higher is better".
METRICS = (
    "knn_accuracy",
    "knn",
    "knc",
    "cpd",
    "trustworthiness",
    "continuity",
    "silhouette",
)
HIGHER_IS_BETTER = dict.fromkeys(METRICS, True)

#: Default sizes (see DESIGN.md).
K_NEIGHBOURS = 10  # kNN accuracy, KNN, KNC (at most)
CV_FOLDS = 5
KNN_QUERY_CELLS = 10_000  # KNN: exact neighbours of this many query cells among all cells
CPD_CELLS = 1_000
TC_CELLS = 5_000  # trustworthiness / continuity
TC_K = 30
SILHOUETTE_CELLS = 10_000

# Chunk size of scikit-learn's chunked distance computations (silhouette, brute-force kNN); its
# default, 1024 MB, would dominate the peak memory of small data sets.
SKLEARN_WORKING_MEMORY_MB = 256

# Up to this many dimensions a KD-tree is exact and fast; above it, chunked brute force (exact).
_TREE_MAX_DIMS = 5


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def subsample_indices(n: int, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a fixed-seed random subsample of ``size`` of ``n`` cells (all if fewer).

    The result depends only on ``(n, size, seed)``: every method of a dataset gets the same cells.
    """
    if size is None or n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def encode_labels(labels) -> tuple[np.ndarray, int]:
    """Integer codes of ``labels`` (-1 where missing) and the number of distinct labels."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(labels, dtype=object)), sort=True)
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


def _neighbours_excluding_self(
    data: np.ndarray, query_idx: np.ndarray, k: int, *, n_jobs: int | None = None
) -> np.ndarray:
    """Exact ``k`` nearest neighbours (indices into ``data``) of ``data[query_idx]``, self excluded.

    Asks for ``k + 1`` and drops the query cell itself; when duplicates push it out of the list,
    the farthest of the ``k + 1`` is dropped instead.
    """
    from sklearn.neighbors import NearestNeighbors

    k1 = min(k + 1, data.shape[0])
    nn = NearestNeighbors(n_neighbors=k1, algorithm=_nn_algorithm(data.shape[1]), n_jobs=n_jobs)
    nn.fit(data)
    ind = nn.kneighbors(data[query_idx], return_distance=False)
    drop = ind == query_idx[:, None]
    no_self = ~drop.any(axis=1)
    drop[no_self, -1] = True
    return ind[~drop].reshape(len(query_idx), k1 - 1)


def _overlap_fraction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the fraction of the entries of ``a`` that also occur in the same row of ``b``."""
    hits = np.zeros(a.shape[0], dtype=np.int64)
    for start in range(0, a.shape[0], 100_000):  # bounds the (rows, k, k) temporary
        aa, bb = a[start : start + 100_000], b[start : start + 100_000]
        hits[start : start + len(aa)] = (aa[:, :, None] == bb[:, None, :]).any(axis=2).sum(axis=1)
    return hits / a.shape[1]


# --------------------------------------------------------------------------------------------
# metrics (pure)
# --------------------------------------------------------------------------------------------


def knn_accuracy(
    emb, labels, *, k: int = K_NEIGHBOURS, folds: int = CV_FOLDS, seed: int = 0, n_jobs=None
) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier of the labels in the embedding.

    Each cell's label is predicted by majority vote of its ``k`` nearest neighbours in the
    embedding among the cells of the other folds (exact KD-tree search); the value is the fraction
    of cells predicted correctly. Folds are stratified by label when every label has at least
    ``folds`` cells, plain shuffled folds otherwise. Cells with a missing label are left out.

    Parameters
    ----------
    emb : array of shape (n_cells, n_dims)
        The embedding.
    labels : array-like of length n_cells
        Cell labels (any hashable type; missing values allowed).
    k : int
        Number of neighbours voting (10 as in the scvis paper).
    folds : int
        Number of cross-validation folds.
    seed : int
        Seed of the fold assignment.
    n_jobs : int or None
        Threads for the neighbour queries (scikit-learn convention).

    Returns
    -------
    float
        Accuracy in [0, 1]; about ``1 / n_classes`` for balanced classes in a random embedding.
        NaN with fewer than two labels.

    References
    ----------
    Ding, Condon & Shah (2018) "Interpretable dimensionality reduction of single cell
    transcriptome data with deep generative models", Nat Commun 9:2002 (k-NN classifier, k=10,
    on the 2-D embedding).
    """
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier

    emb = np.asarray(emb)
    codes, n_classes = encode_labels(labels)
    keep = codes >= 0
    x, y = emb[keep], codes[keep]
    if n_classes < 2 or len(y) < 2:
        return float("nan")
    folds = min(folds, len(y))
    counts = np.bincount(y)
    counts = counts[counts > 0]
    if len(counts) >= 2 and counts.min() >= folds:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    correct = 0
    for train, test in splitter.split(x, y):
        clf = KNeighborsClassifier(
            n_neighbors=min(k, len(train)), algorithm=_nn_algorithm(x.shape[1]), n_jobs=n_jobs
        )
        clf.fit(x[train], y[train])
        correct += int(np.count_nonzero(clf.predict(x[test]) == y[test]))
    return correct / len(y)


def knn_preservation(
    ref,
    emb,
    *,
    k: int = K_NEIGHBOURS,
    max_query_cells: int | None = KNN_QUERY_CELLS,
    seed: int = 0,
    n_jobs=None,
) -> float:
    """KNN: mean fraction of each cell's ``k`` nearest neighbours in the reference kept in 2-D.

    For each query cell, its ``k`` nearest neighbours among *all* cells are found exactly in both
    spaces (self excluded) and the overlap is counted. With more than ``max_query_cells`` cells,
    the mean is taken over a fixed-seed random set of that many query cells (their neighbours
    are still searched among all cells, so neighbourhoods keep their full-data scale); this is an
    unbiased estimate of the all-cell mean, with a standard error below 0.005 at 10,000 queries.
    Searches: KD-tree in up to 5 dimensions, chunked brute force (scikit-learn) above.

    Parameters
    ----------
    ref : array of shape (n_cells, n_ref_dims)
        Reference coordinates (the 50 PCs).
    emb : array of shape (n_cells, n_dims)
        The embedding, same cells in the same order.
    k : int
        Neighbourhood size (10 in Kobak & Berens).
    max_query_cells : int or None
        Number of query cells averaged over; None for all.
    seed : int
        Seed of the query subsample.
    n_jobs : int or None
        Threads for the neighbour queries.

    Returns
    -------
    float
        In [0, 1]; 1 when the neighbourhoods are identical, about ``k / (n_cells - 1)`` for a
        random embedding.

    References
    ----------
    Kobak & Berens (2019) "The art of using t-SNE for single-cell transcriptomics",
    Nat Commun 10:5416 (KNN, k = 10).
    """
    ref, emb = np.asarray(ref), np.asarray(emb)
    n = ref.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return float("nan")
    query = subsample_indices(n, max_query_cells, seed)
    nb_ref = _neighbours_excluding_self(ref, query, k, n_jobs=n_jobs)
    nb_emb = _neighbours_excluding_self(emb, query, k, n_jobs=n_jobs)
    return float(_overlap_fraction(nb_ref, nb_emb).mean())


def knc_n_neighbours(n_classes: int, k: int = K_NEIGHBOURS) -> int:
    """Number of nearest class means KNC compares: ``min(k, (n_classes - 1) // 2)``.

    At most half of the other classes, so that KNC can tell embeddings apart (with
    ``k >= n_classes - 1`` every class mean is a neighbour of every other and KNC is 1 for any
    embedding) and a random embedding expects at most 0.5. 0 (not applicable) below 3 classes.
    """
    if n_classes < 3:
        return 0
    return min(k, (n_classes - 1) // 2)


def knc_preservation(ref, emb, labels, *, k: int = K_NEIGHBOURS) -> float:
    """KNC: mean fraction of each class mean's nearest class means in the reference kept in 2-D.

    Class means are computed over all labelled cells in both spaces; for each class, its
    ``knc_n_neighbours(n_classes, k)`` nearest other class means are compared between the spaces.

    Parameters
    ----------
    ref : array of shape (n_cells, n_ref_dims)
        Reference coordinates (the 50 PCs).
    emb : array of shape (n_cells, n_dims)
        The embedding, same cells in the same order.
    labels : array-like of length n_cells
        Cell labels (missing values are left out).
    k : int
        Upper bound on the number of class-mean neighbours (10 in Kobak & Berens).

    Returns
    -------
    float
        In [0, 1]. NaN with fewer than 3 classes: with 2, each class mean's only neighbour is the
        other one, so the value would be 1 for every embedding.

    References
    ----------
    Kobak & Berens (2019) "The art of using t-SNE for single-cell transcriptomics",
    Nat Commun 10:5416 (KNC, k = 10 class means).
    """
    import scipy.sparse as sp
    from sklearn.neighbors import NearestNeighbors

    codes, n_classes = encode_labels(labels)
    kc = knc_n_neighbours(n_classes, k)
    if kc < 1:
        return float("nan")
    keep = np.flatnonzero(codes >= 0)
    y = codes[keep]
    # class-sum matrix (classes x cells), then divide by class sizes: no per-class copies
    member = sp.csr_matrix((np.ones(len(y)), (y, keep)), shape=(n_classes, len(codes)))
    sizes = np.asarray(member.sum(axis=1))
    means = []
    for x in (np.asarray(ref), np.asarray(emb)):
        mu = np.asarray(member @ x, dtype=np.float64) / sizes
        means.append(NearestNeighbors(n_neighbors=kc).fit(mu).kneighbors(return_distance=False))
    return float(_overlap_fraction(means[0], means[1]).mean())


def cpd(ref, emb, *, n: int = CPD_CELLS, seed: int = 0) -> float:
    """CPD: Spearman correlation of pairwise distances, reference vs embedding, on ``n`` cells.

    Parameters
    ----------
    ref : array of shape (n_cells, n_ref_dims)
        Reference coordinates (the 50 PCs).
    emb : array of shape (n_cells, n_dims)
        The embedding, same cells in the same order.
    n : int
        Size of the fixed-seed random subsample (all cells if fewer).
    seed : int
        Seed of the subsample.

    Returns
    -------
    float
        In [-1, 1]; 1 when distances are monotonically related, about 0 for a random embedding.

    References
    ----------
    Kobak & Berens (2019) "The art of using t-SNE for single-cell transcriptomics",
    Nat Commun 10:5416 (Spearman correlation of pairwise distances on 1,000 random cells).
    """
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    ref, emb = np.asarray(ref), np.asarray(emb)
    idx = subsample_indices(ref.shape[0], n, seed)
    if len(idx) < 3:
        return float("nan")
    d_ref = pdist(ref[idx].astype(np.float64))
    d_emb = pdist(emb[idx].astype(np.float64))
    if np.ptp(d_ref) == 0 or np.ptp(d_emb) == 0:  # constant distances: correlation undefined
        return float("nan")
    return float(spearmanr(d_ref, d_emb).statistic)


def _tc_subsample(ref, emb, k, n, seed):
    idx = subsample_indices(np.shape(ref)[0], n, seed)
    k = min(k, (len(idx) - 1) // 2)  # scikit-learn needs k < n / 2
    ref_s = np.asarray(ref)[idx].astype(np.float64)
    emb_s = np.asarray(emb)[idx].astype(np.float64)
    return ref_s, emb_s, k


def trustworthiness(ref, emb, *, k: int = TC_K, n: int = TC_CELLS, seed: int = 0) -> float:
    """Trustworthiness at ``k``: are the embedding's neighbours also neighbours in the reference?

    Penalises "intruders": cells among a cell's ``k`` nearest in the embedding but not in the
    reference, weighted by how far down the reference ranking they are. Computed with
    :func:`sklearn.manifold.trustworthiness` on a fixed-seed subsample of ``n`` cells (it needs
    the full distance matrix of the subsample); ``k`` is lowered to below ``n / 2`` for tiny
    inputs.

    Parameters
    ----------
    ref : array of shape (n_cells, n_ref_dims)
        Reference coordinates (the 50 PCs).
    emb : array of shape (n_cells, n_dims)
        The embedding, same cells in the same order.
    k : int
        Neighbourhood size (30, as in Open Problems).
    n : int
        Subsample size (all cells if fewer).
    seed : int
        Seed of the subsample.

    Returns
    -------
    float
        At most 1 (identical neighbourhoods); about 0.5 for a random embedding.

    References
    ----------
    Venna & Kaski (2001) "Neighborhood preservation in nonlinear projection methods: an
    experimental study", ICANN 2001, LNCS 2130:485-491.
    """
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    ref_s, emb_s, k = _tc_subsample(ref, emb, k, n, seed)
    if k < 1:
        return float("nan")
    return float(sk_trustworthiness(ref_s, emb_s, n_neighbors=k))


def continuity(ref, emb, *, k: int = TC_K, n: int = TC_CELLS, seed: int = 0) -> float:
    """Continuity at ``k``: are the reference's neighbours also neighbours in the embedding?

    Trustworthiness with the roles of the two spaces swapped (cells missing from a cell's
    embedding neighbourhood, weighted by their embedding rank), computed the same way and on the
    same subsample as :func:`trustworthiness`.

    Parameters
    ----------
    ref, emb, k, n, seed
        As in :func:`trustworthiness`.

    Returns
    -------
    float
        At most 1; about 0.5 for a random embedding.

    References
    ----------
    Venna & Kaski (2001) "Neighborhood preservation in nonlinear projection methods: an
    experimental study", ICANN 2001, LNCS 2130:485-491.
    """
    # The subsample depends only on the cell count and the seed: the same cells either way.
    return trustworthiness(emb, ref, k=k, n=n, seed=seed)


def silhouette(emb, labels, *, n: int = SILHOUETTE_CELLS, seed: int = 0) -> float:
    """Mean silhouette width of the labels in the embedding, on a fixed-seed subsample.

    Parameters
    ----------
    emb : array of shape (n_cells, n_dims)
        The embedding.
    labels : array-like of length n_cells
        Cell labels (cells with a missing label are left out before subsampling).
    n : int
        Subsample size (all labelled cells if fewer); the silhouette is quadratic in it.
    seed : int
        Seed of the subsample.

    Returns
    -------
    float
        In [-1, 1]; near 0 for a random embedding. NaN when the subsample holds fewer than two
        labels, or as many labels as cells.

    References
    ----------
    Rousseeuw (1987) "Silhouettes: a graphical aid to the interpretation and validation of
    cluster analysis", J Comput Appl Math 20:53-65 (:func:`sklearn.metrics.silhouette_score`).
    """
    from sklearn.metrics import silhouette_score

    codes, _ = encode_labels(labels)
    keep = np.flatnonzero(codes >= 0)
    idx = keep[subsample_indices(len(keep), n, seed)]
    y = codes[idx]
    n_present = len(np.unique(y))
    if n_present < 2 or n_present > len(y) - 1:
        return float("nan")
    return float(silhouette_score(np.asarray(emb)[idx].astype(np.float64), y))


# --------------------------------------------------------------------------------------------
# all metrics
# --------------------------------------------------------------------------------------------


def score_embedding(
    emb,
    ref,
    labels,
    *,
    seed: int,
    k: int = K_NEIGHBOURS,
    folds: int = CV_FOLDS,
    knn_query_cells: int | None = KNN_QUERY_CELLS,
    cpd_cells: int = CPD_CELLS,
    tc_cells: int = TC_CELLS,
    tc_k: int = TC_K,
    silhouette_cells: int = SILHOUETTE_CELLS,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Run every metric of :data:`METRICS` and return one tidy row per metric.

    Parameters
    ----------
    emb : array of shape (n_cells, n_dims)
        The embedding.
    ref : array of shape (n_cells, n_ref_dims)
        Reference coordinates (the 50 PCs), same cells in the same order. Kept in its dtype
        (float32 is fine); only subsamples are converted to float64.
    labels : array-like of length n_cells
        Cell labels.
    seed : int
        Seed of every subsample and of the cross-validation folds.
    k, folds, knn_query_cells, cpd_cells, tc_cells, tc_k, silhouette_cells
        Metric sizes; defaults follow DESIGN.md.
    n_jobs : int or None
        Threads for the neighbour searches.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric, value, higher_is_better, n_cells_scored, note, seconds``. A metric that
        does not apply (one label, fewer than 3 classes for KNC) has value NaN and a note starting
        "not applicable"; an embedding with non-finite coordinates gets NaN everywhere and a note
        starting "not scored".

    Raises
    ------
    ScdrbenchError
        When the arrays disagree in their number of cells, are not 2-D, or the reference holds
        non-finite values.
    """
    emb = np.asarray(emb)
    ref = np.asarray(ref)
    labels = np.asarray(labels, dtype=object)
    if emb.ndim != 2 or ref.ndim != 2:
        raise ScdrbenchError(
            f"embedding and reference must be 2-D arrays (got shapes {emb.shape} and {ref.shape})"
        )
    n = ref.shape[0]
    if emb.shape[0] != n:
        raise ScdrbenchError(f"embedding has {emb.shape[0]} cells but the reference has {n}")
    if labels.shape != (n,):
        raise ScdrbenchError(f"{labels.shape[0]} labels for {n} cells")
    if not np.isfinite(ref).all():
        raise ScdrbenchError("the reference (PCs) holds NaN or infinite values")

    codes, n_classes = encode_labels(labels)
    n_labelled = int(np.count_nonzero(codes >= 0))
    unlabelled = "" if n_labelled == n else f"; {n - n_labelled} cells without a label left out"
    label_note = label_problem(labels)
    method = "KD-tree" if emb.shape[1] <= _TREE_MAX_DIMS else "brute force"
    n_query = len(subsample_indices(n, knn_query_cells, seed))
    kc = knc_n_neighbours(n_classes, k)
    knc_note = label_note
    if knc_note is None and kc < 1:
        knc_note = (
            f"not applicable: {n_classes} labels, KNC needs at least 3 "
            "(with 2, each class mean's only neighbour is the other: always 1)"
        )
    tc_n = len(subsample_indices(n, tc_cells, seed))
    tc_k_eff = min(tc_k, (tc_n - 1) // 2)
    sil_n = len(subsample_indices(n_labelled, silhouette_cells, seed))

    def sub(m, total):
        return "all cells" if m == total else f"fixed-seed subsample of {m} of {total} cells"

    # metric -> (function, n_cells_scored, note when applicable, reason not applicable)
    plan: dict[str, tuple[Callable[[], float], int, str, str | None]] = {
        "knn_accuracy": (
            lambda: knn_accuracy(emb, labels, k=k, folds=folds, seed=seed, n_jobs=n_jobs),
            n_labelled,
            f"k={k}, {folds}-fold cross-validation, exact {method} kNN on all cells{unlabelled}",
            label_note,
        ),
        "knn": (
            lambda: knn_preservation(
                ref, emb, k=k, max_query_cells=knn_query_cells, seed=seed, n_jobs=n_jobs
            ),
            n_query,
            f"k={k}; exact neighbours among all {n} cells "
            f"(reference: {'KD-tree' if ref.shape[1] <= _TREE_MAX_DIMS else 'chunked brute force'}"
            f", embedding: {method}) of "
            + (
                "every cell" if n_query == n else f"a fixed-seed subsample of {n_query} query cells"
            ),
            None if n >= 2 else "not applicable: fewer than 2 cells",
        ),
        "knc": (
            lambda: knc_preservation(ref, emb, labels, k=k),
            n_labelled,
            f"k={kc} nearest of {n_classes} class means (at most half of the other classes)"
            f"{unlabelled}",
            knc_note,
        ),
        "cpd": (
            lambda: cpd(ref, emb, n=cpd_cells, seed=seed),
            len(subsample_indices(n, cpd_cells, seed)),
            "Spearman of pairwise distances, " + sub(min(n, cpd_cells), n),
            None if n >= 3 else "not applicable: fewer than 3 cells",
        ),
        "trustworthiness": (
            lambda: trustworthiness(ref, emb, k=tc_k, n=tc_cells, seed=seed),
            tc_n,
            f"k={tc_k_eff}, " + sub(tc_n, n),
            None if tc_k_eff >= 1 else "not applicable: fewer than 3 cells",
        ),
        "continuity": (
            lambda: continuity(ref, emb, k=tc_k, n=tc_cells, seed=seed),
            tc_n,
            f"k={tc_k_eff}, " + sub(tc_n, n),
            None if tc_k_eff >= 1 else "not applicable: fewer than 3 cells",
        ),
        "silhouette": (
            lambda: silhouette(emb, labels, n=silhouette_cells, seed=seed),
            sil_n,
            "of the labels, " + sub(sil_n, n_labelled).replace("cells", "labelled cells"),
            label_note,
        ),
    }

    import sklearn

    n_bad = int(np.count_nonzero(~np.isfinite(emb).all(axis=1)))
    rows = []
    for metric in METRICS:
        func, n_scored, note, problem = plan[metric]
        started = time.perf_counter()
        if n_bad:
            value, n_scored = float("nan"), 0
            note = (
                f"not scored: {n_bad} of {n} cells have non-finite (NaN/inf) coordinates; "
                "the method failed"
            )
        elif problem:
            value, note = float("nan"), problem
        else:
            with sklearn.config_context(working_memory=SKLEARN_WORKING_MEMORY_MB):
                value = func()
            if np.isnan(value):
                note = f"undefined (NaN) for this input; {note}"
        seconds = time.perf_counter() - started
        log.info("%s = %.4f (%.1f s; %s)", metric, value, seconds, note)
        rows.append(
            {
                "metric": metric,
                "value": value,
                "higher_is_better": HIGHER_IS_BETTER[metric],
                "n_cells_scored": int(n_scored),
                "note": note,
                "seconds": seconds,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------------

COLUMNS = [
    "dataset",
    "method",
    "metric",
    "value",
    "higher_is_better",
    "n_cells_scored",
    "seed",
    "note",
]


def _read_parts(path, *, what: str, obsm_key: str, label: bool, uns_keys=()):
    """Read only obs_names, one obsm array, optionally obs['label'] and a few uns scalars."""
    from pathlib import Path

    import h5py
    from anndata.io import read_elem

    path = Path(path)
    if not path.exists():
        raise ScdrbenchError(f"{what} {path} does not exist; re-run the step that makes it")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ScdrbenchError(f"{what} {path} is not a readable h5ad file ({err})") from None
    with f:
        if "obs" not in f or "obsm" not in f or obsm_key not in f["obsm"]:
            raise ScdrbenchError(f"{what} {path} has no obsm['{obsm_key}']")
        obs = f["obs"]
        names = np.asarray(read_elem(obs[obs.attrs["_index"]]), dtype=object)
        coords = read_elem(f["obsm"][obsm_key])
        coords = np.asarray(coords.to_numpy() if hasattr(coords, "to_numpy") else coords)
        labels = None
        if label:
            if "label" not in obs:
                raise ScdrbenchError(f"{what} {path} has no obs['label']")
            labels = np.asarray(read_elem(obs["label"]), dtype=object)
        uns = {}
        for key in uns_keys:
            if "uns" in f and key in f["uns"]:
                value = read_elem(f["uns"][key])
                uns[key] = value.item() if hasattr(value, "item") else value
    return names, coords, labels, uns


def main(
    embedding_path,
    dataset_path,
    output_path,
    *,
    dataset: str,
    method: str,
    seed: int,
    log_path=None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Score one embedding file against its dataset's ``pca.h5ad`` and write the metrics TSV.

    Parameters
    ----------
    embedding_path : path
        ``results/embed/{dataset}/{method}.h5ad`` (``obsm['X_emb']``, obs_names; ``uns``
        ``dataset_id``, ``method_id``, ``seed``).
    dataset_path : path
        ``results/data/{dataset}/pca.h5ad`` (``obsm['X_pca']``, ``obs['label']``, obs_names);
        the count matrix is never read.
    output_path : path
        ``results/metrics/{dataset}/{method}.tsv``, written atomically with columns
        :data:`COLUMNS`.
    dataset, method : str
        Ids written into the table; checked against the embedding's ``uns`` when present.
    seed : int
        Seed of the subsamples and folds, written into the table.
    log_path : path or None
        Log file (stderr when None).
    threads : int or None
        Threads for the neighbour searches and BLAS; None keeps the thread pools as the
        environment set them (``OMP_NUM_THREADS``, as the Snakemake rule does) and uses that many.

    Raises
    ------
    ScdrbenchError
        When a file is missing or unreadable, or the embedding does not describe the dataset's
        cells in the dataset's order (the message names both files).
    """
    from scripts.common.io import write_table
    from scripts.common.runtime import peak_rss_mb, pin_threads, setup_logging

    logger = setup_logging(log_path)
    if threads is None:
        threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    else:
        pin_threads(threads)
    started = time.perf_counter()
    names, emb, _, uns = _read_parts(
        embedding_path,
        what="embedding",
        obsm_key="X_emb",
        label=False,
        uns_keys=("dataset_id", "method_id", "seed", "status", "status_message"),
    )
    logger.info("read embedding %s: %s, uns %s", embedding_path, emb.shape, uns)
    ref_names, ref, labels, _ = _read_parts(
        dataset_path, what="dataset file", obsm_key="X_pca", label=True
    )
    logger.info("read reference %s: %s %s", dataset_path, ref.shape, ref.dtype)

    for key, expected in (("dataset_id", dataset), ("method_id", method)):
        if key in uns and str(uns[key]) != expected:
            raise ScdrbenchError(
                f"embedding {embedding_path} has uns['{key}'] = {uns[key]!r}, expected "
                f"{expected!r}; it belongs to another job, re-run its embed step"
            )
    if len(names) != len(ref_names) or emb.shape[0] != len(names):
        raise ScdrbenchError(
            f"embedding {embedding_path} has {emb.shape[0]} cells but dataset file "
            f"{dataset_path} has {len(ref_names)}; re-run the embed step on this dataset"
        )
    if not np.array_equal(names, ref_names):
        first = int(np.flatnonzero(names != ref_names)[0])
        raise ScdrbenchError(
            f"embedding {embedding_path} lists its cells in a different order or with different "
            f"names than dataset file {dataset_path} (first difference at position {first}: "
            f"{names[first]!r} vs {ref_names[first]!r}); re-run the embed step on this dataset"
        )
    if ref.ndim != 2 or not np.isfinite(ref).all():
        raise ScdrbenchError(
            f"dataset file {dataset_path}: obsm['X_pca'] is not a finite 2-D array; "
            "re-run the preprocessing step"
        )
    if emb.ndim == 2:
        n_bad = int(np.count_nonzero(~np.isfinite(emb).all(axis=1)))
        if n_bad:
            logger.warning(
                "embedding %s: %d of %d cells have non-finite coordinates; "
                "every metric is reported as NaN",
                embedding_path,
                n_bad,
                emb.shape[0],
            )

    if str(uns.get("status", "ok")) != "ok":
        message = uns.get("status_message", uns["status"])
        logger.warning("embedding %s is a status record: %s; not scored", embedding_path, message)
        table = not_scored_table(f"not scored: the embedding job ended with {message}")
    else:
        table = score_embedding(emb, ref, labels, seed=seed, n_jobs=threads)
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["seed"] = seed
    table = table[COLUMNS]
    write_table(table, output_path)
    logger.info(
        "wrote %s: %d metrics in %.1f s, peak RSS %.0f MB",
        output_path,
        len(table),
        time.perf_counter() - started,
        peak_rss_mb(),
    )
    return table


def not_scored_table(note: str) -> pd.DataFrame:
    """Every metric NaN with the same note (a failed embedding or scoring job)."""
    return pd.DataFrame(
        {
            "metric": list(METRICS),
            "value": float("nan"),
            "higher_is_better": [HIGHER_IS_BETTER[m] for m in METRICS],
            "n_cells_scored": 0,
            "note": note,
            "seconds": float("nan"),
        }
    )


def write_status_record(output_path, *, dataset: str, method: str, seed: int, message: str):
    """A failed scoring job's metrics file: every metric NaN, the note says why."""
    from scripts.common.io import write_table

    table = not_scored_table(f"not scored: the score job ended with {message}")
    table.insert(0, "method", method)
    table.insert(0, "dataset", dataset)
    table["seed"] = seed
    write_table(table[COLUMNS], output_path)


def _parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", required=True, help="results/embed/{dataset}/{method}.h5ad")
    parser.add_argument("--dataset-file", required=True, help="results/data/{dataset}/pca.h5ad")
    parser.add_argument("--output", required=True, help="results/metrics/{dataset}/{method}.tsv")
    parser.add_argument("--dataset", required=True, help="dataset id")
    parser.add_argument("--method", required=True, help="method id")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--log", default=None, help="log file (default: stderr)")
    parser.add_argument(
        "--threads", type=int, default=None, help="default: $OMP_NUM_THREADS, else 1"
    )
    parser.add_argument("--time-budget-s", type=float, default=None)
    parser.add_argument("--mem-budget-mb", type=float, default=None)
    parser.add_argument("--child", action="store_true", help="run the work (else: supervise it)")
    args = parser.parse_args(argv)
    args.time_budget_s = args.time_budget_s or None  # 0: no budget
    args.mem_budget_mb = args.mem_budget_mb or None
    return args


def cli(argv=None) -> None:
    """Command-line entry point: supervise the scoring (see :mod:`scripts.common.supervise`)."""
    import sys

    from scripts.common import supervise as sv
    from scripts.common.budget import Budget

    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)
    if args.child:
        return _child(args)
    budget = Budget(time_s=args.time_budget_s, mem_mb=args.mem_budget_mb)
    outcome = sv.supervise(
        sv.child_command("scripts.metrics", argv), budget=budget, log_path=args.log
    )
    if outcome.status == "ok":
        return None
    if outcome.status in ("interrupted", "skipped"):
        raise SystemExit(outcome.returncode if outcome.returncode > 0 else 1)
    write_status_record(
        args.output,
        dataset=args.dataset,
        method=args.method,
        seed=args.seed,
        message=outcome.message,
    )
    print(
        f"scdrbench: scoring {args.dataset}/{args.method}: {outcome.message}; recorded in "
        f"{args.output} (log: {args.log or 'stderr'})",
        file=sys.stderr,
    )
    return None


@cli_errors
def _child(args) -> None:
    """Score (the supervised child)."""
    main(
        args.embedding,
        args.dataset_file,
        args.output,
        dataset=args.dataset,
        method=args.method,
        seed=args.seed,
        log_path=args.log,
        threads=args.threads,
    )


if __name__ == "__main__":
    cli()
