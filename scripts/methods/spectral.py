"""Positive control: spectral embedding of the kNN graph (Belkin & Niyogi 2003), scikit-learn.

The two leading non-trivial eigenvectors of the normalised Laplacian of the symmetrised
``n_neighbors``-nearest-neighbour graph of the input (``sklearn.manifold.SpectralEmbedding``),
as Open Problems' dimensionality-reduction task uses one: a faithful, simple non-linear
embedding of the graph the other methods start from.

``eigen_solver`` is scikit-learn's. Its default, ARPACK, finds the smallest eigenvalues in
shift-invert mode: a sparse LU factorisation of the Laplacian (SuperLU), whose fill-in grows
faster than the graph (``estimate_memory_mb``). ``lobpcg`` (scipy's LOBPCG, at most 2,000
iterations, scikit-learn's settings) only multiplies by the Laplacian: memory linear in the cells,
at the cost of eigenvectors that may stop short of ARPACK's tolerance on large graphs (the
ladder's ``spectral_lobpcg`` shows the quality cost). scikit-learn's ``amg`` (LOBPCG with an
algebraic-multigrid preconditioner) needs ``pyamg``, which this project does not install.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from scripts.methods._checks import check_input, check_neighbours
from scripts.methods._params import choice, integer

BACKEND_MODULES = ("sklearn.manifold",)
VERSIONED = ("scikit-learn",)
PARAMS = {
    "n_neighbors": integer(15, minimum=2, description="neighbours of the kNN graph"),
    "eigen_solver": choice(
        ["arpack", "lobpcg"],
        "arpack",
        "scikit-learn's eigensolver: arpack (shift-invert, factorises the Laplacian) or lobpcg "
        "(matrix products only: memory linear in the cells)",
    ),
}

log = logging.getLogger("scdrbench.methods.spectral")


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    n_neighbors: int = 15,
    eigen_solver: str = "arpack",
) -> np.ndarray:
    """The spectral embedding of ``X``'s kNN graph; float32 ``(n, 2)``."""
    from sklearn.manifold import SpectralEmbedding

    X = check_input(np.asarray(X, dtype=np.float32), "spectral", min_cells=5)
    check_neighbours("spectral", "n_neighbors", n_neighbors, X.shape[0])
    model = SpectralEmbedding(
        n_components=2,
        affinity="nearest_neighbors",
        n_neighbors=n_neighbors,
        eigen_solver=eigen_solver,
        random_state=seed,
        n_jobs=threads,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = model.fit_transform(X)
    # LOBPCG's "not reaching the requested tolerance" and the like: into the job's log, counted
    for w in caught:
        log.info("%s: %s", w.category.__name__, str(w.message).strip())
    if info is not None:
        info["eigen_solver"] = eigen_solver
        info["solver_warnings"] = len(caught)
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, n_neighbors: int = 15, **params) -> float:
    """The kNN graph and its Laplacian (CSR, about 2 x n_neighbors entries per cell, float64 +
    int32, a few copies), the eigensolver's vectors, the input."""
    return n_cells * (n_neighbors * 2 * 12 * 4 + n_features * 4 * 2 + 200) / 1e6 + 300
