"""Diffusion map (Coifman & Lafon 2006; Haghverdi et al. 2015) with scanpy.

``scanpy.pp.neighbors`` (UMAP's connectivities on the input, ``n_neighbors`` 15) then
``scanpy.tl.diffmap``: the leading eigenvectors of the diffusion operator. The first is the
stationary state (constant), so the embedding is diffusion components 1 and 2.
"""

from __future__ import annotations

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import integer

BACKEND_MODULES = ("scanpy", "umap")  # scanpy.pp.neighbors imports umap
BLOCKED_MODULES = ("tensorflow",)  # which would import TensorFlow
VERSIONED = ("scanpy", "umap-learn", "pynndescent")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {}
PARAMS = {
    "n_neighbors": integer(15, minimum=2, description="neighbours of the kNN graph"),
}
#: scanpy's neighbours search is exact (sklearn, brute force) below this many cells (Euclidean)
SCANPY_EXACT_BELOW = 8192


def embed(
    X, *, seed: int, info: dict | None = None, threads: int = 1, n_neighbors: int = 15
) -> np.ndarray:
    """Diffusion components 1 and 2 of ``X`` (cells x features); float32 ``(n, 2)``."""
    import sys

    from scdrbench.methods import import_backend

    import_backend(sys.modules[__name__])
    import anndata as ad
    import scanpy as sc

    from scdrbench.data.steps import knn_transformer

    X = check_input(np.asarray(X, dtype=np.float32), "diffmap", min_cells=5)
    check_neighbours("diffmap", "n_neighbors", n_neighbors, X.shape[0])
    adata = ad.AnnData(obsm={"X_input": X}, obs={"i": np.arange(X.shape[0])})
    # From 8,192 cells scanpy hands the search to pynndescent, whose csr_array (scipy >= 1.15)
    # its neighbours code cannot read (no getnnz): the project's transformer returns csr_matrix
    # with the settings scanpy would use; below that, scanpy's exact search as before.
    transformer = None
    if X.shape[0] >= SCANPY_EXACT_BELOW:
        transformer = knn_transformer(X.shape[0], n_neighbors=n_neighbors, seed=seed)
    sc.pp.neighbors(
        adata,
        n_neighbors=n_neighbors,
        use_rep="X_input",
        random_state=seed,
        transformer=transformer,
    )
    sc.tl.diffmap(adata, n_comps=3, random_state=seed)
    emb = adata.obsm["X_diffmap"][:, 1:3]
    if info is not None:
        info["eigenvalues"] = [float(v) for v in adata.uns["diffmap_evals"][:3]]
    return np.asarray(emb, dtype=np.float32)


#: Measured peaks (kernel high-water mark, 15 neighbours, 50 PCs, 2 threads) on the proxy
#: generator at 30,000 cells (``src/scdrbench/data/proxy.py --n-cells 30000``, version 2) and its
#: fixed-seed 10k subsample, through the workflow's rules, 2026-12-05, on a shared 2-core
#: machine (issue 23): cells -> MB.
MEASURED_PEAK_MB = {10_000: 595, 30_000: 650}


def estimate_memory_mb(n_cells: int, n_features: int, n_neighbors: int = 15, **params) -> float:
    """The kNN graph (distances and connectivities, CSR, float32 + int32, symmetrised: about 4
    x n_neighbors entries per cell), the input twice, pynndescent's search trees and candidate
    heaps, scanpy's copies of the graph and the diffusion operator (2.7 KB a cell), and ~600 MB
    of imports (scanpy, umap-learn, numba): 3.6 KB a cell. Fitted to the scaling ladder's peaks
    on the calibrated proxy (benchmarks/results/measured_peaks.tsv, held by
    tests/test_registry.py: 3.4 KB a cell from 100k to 1.3M; the earlier 2.75 KB a cell, fitted
    to MEASURED_PEAK_MB, was 17% below the 1.3M peak). The
    diffusion components come from ``eigsh`` on the sparse transition matrix (a few Lanczos
    vectors, no factorisation): about 5.3 GB at 1.3M cells, so diffmap needs no other setting.
    """
    per_cell = n_neighbors * 4 * 8 + n_features * 4 * 2 + 2_720
    return n_cells * per_cell / 1e6 + 600
