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
PARAMS = {
    "n_neighbors": integer(15, minimum=2, description="neighbours of the kNN graph"),
}


def embed(
    X, *, seed: int, info: dict | None = None, threads: int = 1, n_neighbors: int = 15
) -> np.ndarray:
    """Diffusion components 1 and 2 of ``X`` (cells x features); float32 ``(n, 2)``."""
    import sys

    from scdrbench.methods import import_backend

    import_backend(sys.modules[__name__])
    import anndata as ad
    import scanpy as sc

    X = check_input(np.asarray(X, dtype=np.float32), "diffmap", min_cells=5)
    check_neighbours("diffmap", "n_neighbors", n_neighbors, X.shape[0])
    adata = ad.AnnData(obsm={"X_input": X}, obs={"i": np.arange(X.shape[0])})
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_input", random_state=seed)
    sc.tl.diffmap(adata, n_comps=3, random_state=seed)
    emb = adata.obsm["X_diffmap"][:, 1:3]
    if info is not None:
        info["eigenvalues"] = [float(v) for v in adata.uns["diffmap_evals"][:3]]
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, n_neighbors: int = 15, **params) -> float:
    """The kNN graph (distances and connectivities, CSR, float32 + int32, symmetrised: about 4
    x n_neighbors entries per cell), the input, the eigenvectors, and ~500 MB of imports."""
    return n_cells * (n_neighbors * 4 * 8 + n_features * 4 * 2 + 100) / 1e6 + 500
