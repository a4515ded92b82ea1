"""Metrics of the labels: kNN classification accuracy, class-mean neighbourhoods, silhouette."""

from __future__ import annotations

import numpy as np

from scdrbench.metrics.base import (
    CV_FOLDS,
    K_NEIGHBOURS,
    SILHOUETTE_CELLS,
    _nn_algorithm,
    _overlap_fraction,
    classifier_cells,
    encode_labels,
    subsample_indices,
)


def knn_accuracy(
    emb, labels, *, k: int = K_NEIGHBOURS, folds: int = CV_FOLDS, seed: int = 0, n_jobs=None
) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier of the labels in the embedding.

    Each cell's label is predicted by majority vote of its ``k`` nearest neighbours in the
    embedding among the cells of the other folds (exact KD-tree search); the value is the fraction
    of cells predicted correctly. Folds are stratified by label when every label has at least
    ``folds`` cells, plain shuffled folds otherwise. Cells with a missing label are left out. In
    more than 5 dimensions the search is brute force, and above ``BRUTE_CLASSIFIER_CELLS``
    (100,000) labelled cells a fixed-seed subsample of that many is scored (``classifier_cells``).

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
    cells = classifier_cells(len(y), x.shape[1], seed)
    x, y = x[cells], y[cells]
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


def knn_recall_per_label(
    emb, labels, *, k: int = K_NEIGHBOURS, folds: int = CV_FOLDS, seed: int = 0, n_jobs=None
) -> dict[str, float]:
    """Per label, the fraction of its cells that the cross-validated ``k``-NN classifier of
    :func:`knn_accuracy` labels correctly (the same folds): which populations an embedding
    keeps apart."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    codes, n_classes = encode_labels(labels)
    keep = codes >= 0
    x, y = np.asarray(emb)[keep], codes[keep]
    if n_classes < 2 or len(y) < 2:
        return {}
    cells = classifier_cells(len(y), x.shape[1], seed)
    x, y = x[cells], y[cells]
    counts = np.bincount(y)
    counts = counts[counts > 0]
    folds = min(folds, len(y))
    if counts.min() >= folds:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    clf = KNeighborsClassifier(n_neighbors=k, algorithm=_nn_algorithm(x.shape[1]), n_jobs=n_jobs)
    pred = cross_val_predict(clf, x, y, cv=splitter)
    names = np.asarray(labels, dtype=object)[keep][cells]
    return {
        str(name): float(np.mean(pred[names == name] == y[names == name]))
        for name in sorted(set(names), key=str)
    }
