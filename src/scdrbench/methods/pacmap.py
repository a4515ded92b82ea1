"""PaCMAP (Wang, Huang, Rudin & Shaposhnik 2021, JMLR 22(201)) with the authors' ``pacmap``.

Pairwise Controlled Manifold Approximation: near pairs, mid-near pairs and further pairs in
three optimisation phases, which keeps local and global structure. Defaults are the library's
(10 neighbours, MN_ratio 0.5, FP_ratio 2, 100 + 100 + 250 iterations, PCA initialisation). Its
nearest neighbours come from faiss, its optimisation from numba: both on the job's threads.
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import boolean, choice, integer, integers, number

BACKEND_MODULES = ("pacmap",)
VERSIONED = ("pacmap", "faiss-cpu", "numba")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"num_iters": [50, 50, 100]}
PARAMS = {
    "n_neighbors": integer(10, minimum=2, description="near pairs per cell"),
    "MN_ratio": number(0.5, minimum=0, description="mid-near pairs per near pair"),
    "FP_ratio": number(2.0, gt=0, description="further pairs per near pair"),
    "lr": number(1.0, gt=0, description="learning rate (Adam)"),
    "num_iters": integers(
        [100, 100, 250], minimum=0, min_items=3, max_items=3, description="iterations per phase"
    ),
    "apply_pca": boolean(True, "PaCMAP's own PCA to 100 dimensions for wider input"),
    "init": choice(["pca", "random"], "pca"),
}


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    n_neighbors: int = 10,
    MN_ratio: float = 0.5,  # noqa: N803 - the library's parameter names
    FP_ratio: float = 2.0,  # noqa: N803
    lr: float = 1.0,
    num_iters=(100, 100, 250),
    apply_pca: bool = True,
    init: str = "pca",
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with PaCMAP; returns float32 ``(n, 2)``."""
    import pacmap

    X = check_input(np.asarray(X, dtype=np.float32), "pacmap", min_cells=5)
    check_neighbours("pacmap", "n_neighbors", n_neighbors, X.shape[0])
    # PaCMAP logs "Warning: random state is set to <seed>" whenever it is seeded, as every
    # run here is: not news to the user, so that one record is dropped, no other.
    pacmap_log = logging.getLogger("pacmap.pacmap")
    pacmap_log.addFilter(_seed_notice)
    try:
        model = pacmap.PaCMAP(
            n_components=2,
            n_neighbors=n_neighbors,
            MN_ratio=MN_ratio,
            FP_ratio=FP_ratio,
            lr=lr,
            num_iters=tuple(int(i) for i in num_iters),
            apply_pca=apply_pca,
            random_state=seed,
            verbose=False,
        )
        emb = model.fit_transform(X, init=init)
    finally:
        pacmap_log.removeFilter(_seed_notice)
    if info is not None:
        info["n_neighbors"] = int(model.n_neighbors)
    return np.asarray(emb, dtype=np.float32)


def _seed_notice(record: logging.LogRecord) -> bool:
    """False (drop) for PaCMAP's notice that the random state is set."""
    return not record.getMessage().startswith("Warning: random state is set to ")


def estimate_memory_mb(
    n_cells: int, n_features: int, n_neighbors: int = 10, MN_ratio=0.5, FP_ratio=2.0, **params
) -> float:
    """The input six times over (float32 copies, its PCA, the neighbour search), the pair lists
    (int32 pairs, their distances, built twice: 32 bytes a pair), the optimiser's state and the
    neighbour search's own arrays (1.9 KB a cell), plus ~330 MB of numba and the imports: 4.25
    KB a cell, 5.9 GB at 1.3M cells. Fitted to the scaling ladder's peaks on the calibrated
    proxy (benchmarks/results/measured_peaks.tsv, held by tests/test_registry.py: 4.1 KB a cell
    from 100k to 1.3M); the earlier 3.3 KB a cell, fitted to MEASURED_PEAK_MB, was 22% below
    the 1.3M peak."""
    pairs = n_neighbors * (1 + MN_ratio + FP_ratio)
    return n_cells * (n_features * 4 * 6 + pairs * 32 + 1_930) / 1e6 + 330


#: Measured peaks of the pacmap job with its defaults (kernel high-water mark, 50 PCs, 2
#: threads) on the proxy generator at 30,000 cells (``src/scdrbench/data/proxy.py --n-cells 30000``,
#: version 2) and its fixed-seed 10k subsample, through the workflow's rules, 2026-12-05, on a
#: shared 2-core machine (issue 23): cells -> MB.
MEASURED_PEAK_MB = {10_000: 337, 30_000: 403}
