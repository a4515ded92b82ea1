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

Time at scale is another matter: by default the kNN graph comes from scikit-learn's exact
search, brute force above 15 dimensions, so quadratic in the cells whatever the solver (LOBPCG's
fit went from 3.2 s at 10k cells to 27 s at 30k on the shared machine of issue 23, n^1.95: about
12 hours at 1.3M). ``neighbors: nndescent`` builds the same graph (each cell and its
``n_neighbors - 1`` nearest others, connectivities, symmetrised as scikit-learn does) from
pynndescent's approximate search, umap-learn's, in about n^1.1; ``spectral_lobpcg`` uses both.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import choice, integer

BACKEND_MODULES = ("sklearn.manifold",)
VERSIONED = ("scikit-learn",)
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {}
PARAMS = {
    "n_neighbors": integer(15, minimum=2, description="neighbours of the kNN graph"),
    "eigen_solver": choice(
        ["arpack", "lobpcg"],
        "arpack",
        "scikit-learn's eigensolver: arpack (shift-invert, factorises the Laplacian) or lobpcg "
        "(matrix products only: memory linear in the cells)",
    ),
    "neighbors": choice(
        ["exact", "nndescent"],
        "exact",
        "the kNN graph's search: scikit-learn's exact one (brute force: quadratic in the cells) "
        "or pynndescent's approximate one (umap-learn's)",
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
    neighbors: str = "exact",
) -> np.ndarray:
    """The spectral embedding of ``X``'s kNN graph; float32 ``(n, 2)``."""
    from sklearn.manifold import SpectralEmbedding

    X = check_input(np.asarray(X, dtype=np.float32), "spectral", min_cells=5)
    check_neighbours("spectral", "n_neighbors", n_neighbors, X.shape[0])
    common = dict(n_components=2, eigen_solver=eigen_solver, random_state=seed, n_jobs=threads)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if neighbors == "nndescent":
            graph = nndescent_affinity(X, n_neighbors, seed=seed, threads=threads)
            emb = SpectralEmbedding(affinity="precomputed", **common).fit_transform(graph)
        else:
            model = SpectralEmbedding(
                affinity="nearest_neighbors", n_neighbors=n_neighbors, **common
            )
            emb = model.fit_transform(X)
    # LOBPCG's "not reaching the requested tolerance" and the like: into the job's log, counted
    for w in caught:
        log.info("%s: %s", w.category.__name__, str(w.message).strip())
    if info is not None:
        info["eigen_solver"] = eigen_solver
        info["neighbors"] = neighbors
        info["solver_warnings"] = len(caught)
    return np.asarray(emb, dtype=np.float32)


def nndescent_affinity(X: np.ndarray, n_neighbors: int, *, seed: int, threads: int):
    """scikit-learn's ``affinity="nearest_neighbors"`` matrix (0/1 connectivities of each cell
    and its ``n_neighbors - 1`` nearest others, itself included, then ``(A + A.T) / 2``), from
    pynndescent's approximate search instead of an exact one."""
    import scipy.sparse as sp
    from pynndescent import NNDescent

    index = NNDescent(
        X, n_neighbors=n_neighbors, random_state=seed, n_jobs=threads, low_memory=True
    )
    idx, _ = index.neighbor_graph
    n = X.shape[0]
    # pynndescent lists the cell itself first; where an approximate row lacks it (or has a
    # missing neighbour, -1), it takes the place of the row's farthest
    own = np.arange(n)
    idx = np.where(idx < 0, own[:, None], idx)
    lacks = ~(idx == own[:, None]).any(axis=1)
    idx[lacks, -1] = own[lacks]
    rows = np.repeat(np.arange(n), idx.shape[1])
    A = sp.csr_matrix((np.ones(rows.size), (rows, idx.ravel())), shape=(n, n))
    A.data[:] = 1.0  # duplicates (an approximate list may repeat the cell) count once
    return 0.5 * (A + A.T)


#: Measured peaks (kernel high-water mark, 15 neighbours, 50 PCs, 2 threads) on the proxy
#: generator at 30,000 cells (``src/scdrbench/data/proxy.py --n-cells 30000``, version 2) and its
#: fixed-seed 10k subsample, through the workflow's rules, 2026-12-05, on a shared 2-core
#: machine (issue 23): cells -> MB. ARPACK (the default), then LOBPCG (``spectral_lobpcg``).
MEASURED_PEAK_MB = {10_000: 260, 30_000: 751}
MEASURED_PEAK_MB_LOBPCG = {10_000: 214, 30_000: 261}
#: The scaling ladder's ARPACK jobs on the calibrated proxy (version 4: 3 lineages joined by
#: continua, 2026-12-05, benchmarks/results/measured_peaks.tsv): its less clustered graph fills
#: the LU factors in far more than version 2's.
MEASURED_PEAK_MB_V4 = {10_000: 513, 30_000: 2957}
#: ARPACK's LU factors over the rest of the model: 287 MB at 10k cells and 2,679 MB at 30k on
#: the calibrated proxy, n^2.03 (on version 2: 46 and 490 MB); a kNN graph of 50-dimensional
#: data has no small separators, so its fill-in is far above a mesh's n log n
LU_MB_AT_10K, LU_EXPONENT = 300, 2.05
#: ``neighbors: nndescent`` over the exact search: pynndescent's libraries, and per neighbour of
#: each cell its heaps (indices, distances, flags) and random-projection trees
NNDESCENT_IMPORTS_MB, NNDESCENT_BYTES_PER_NEIGHBOUR = 350, 100


def estimate_memory_mb(
    n_cells: int,
    n_features: int,
    n_neighbors: int = 15,
    eigen_solver: str = "arpack",
    **params,
) -> float:
    """The kNN graph and its normalised Laplacian (CSR, float64, a few copies), LOBPCG's blocks
    of vectors and the input: 2.6 KB a cell and 200 MB of imports (fitted to
    MEASURED_PEAK_MB_LOBPCG; 3.6 GB at 1.3M cells). ARPACK adds the sparse LU factorisation of
    the shifted Laplacian (SuperLU), growing as n^2.05 from 300 MB at 10k cells (fitted to
    MEASURED_PEAK_MB_V4): 34 GB at 100k, about 6.5 TB at 1.3M, so that the ladder records
    ``spectral`` as skipped from 100k cells on and runs ``spectral_lobpcg`` instead. The
    exponent rests on two rungs.
    """
    base = n_cells * (n_neighbors * 120 + n_features * 4 * 4) / 1e6 + 200
    if params.get("neighbors") == "nndescent":
        # pynndescent's numba-compiled libraries and its neighbour heaps and search trees
        base += NNDESCENT_IMPORTS_MB + n_cells * n_neighbors * NNDESCENT_BYTES_PER_NEIGHBOUR / 1e6
    if eigen_solver == "lobpcg":
        return base
    return base + LU_MB_AT_10K * (n_cells / 1e4) ** LU_EXPONENT
