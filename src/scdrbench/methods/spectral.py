"""Positive control: spectral embedding of the kNN graph (Belkin & Niyogi 2003), scikit-learn.

The two leading non-trivial eigenvectors of the normalised Laplacian of the symmetrised
``n_neighbors``-nearest-neighbour graph of the input (``sklearn.manifold.SpectralEmbedding``),
as Open Problems' dimensionality-reduction task uses one: a faithful, simple non-linear
embedding of the graph the other methods start from.
"""

from __future__ import annotations

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import integer

BACKEND_MODULES = ("sklearn.manifold",)
VERSIONED = ("scikit-learn",)
PARAMS = {
    "n_neighbors": integer(15, minimum=2, description="neighbours of the kNN graph"),
}


def embed(
    X, *, seed: int, info: dict | None = None, threads: int = 1, n_neighbors: int = 15
) -> np.ndarray:
    """The spectral embedding of ``X``'s kNN graph; float32 ``(n, 2)``."""
    from sklearn.manifold import SpectralEmbedding

    X = check_input(np.asarray(X, dtype=np.float32), "spectral", min_cells=5)
    check_neighbours("spectral", "n_neighbors", n_neighbors, X.shape[0])
    model = SpectralEmbedding(
        n_components=2,
        affinity="nearest_neighbors",
        n_neighbors=n_neighbors,
        random_state=seed,
        n_jobs=threads,
    )
    return np.asarray(model.fit_transform(X), dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, n_neighbors: int = 15, **params) -> float:
    """The kNN graph and its Laplacian (CSR, about 2 x n_neighbors entries per cell, float64 +
    int32, a few copies), the eigensolver's vectors, the input."""
    return n_cells * (n_neighbors * 2 * 12 * 4 + n_features * 4 * 2 + 200) / 1e6 + 300
