"""TriMap (Amid & Warmuth 2019, arXiv:1910.00204) with the authors' ``trimap``.

Triplet constraints (12 inliers x 4 outliers per cell, 3 random triplets), weighted by their
distance ratios, optimised with delta-bar-delta for 400 iterations: the library's defaults.
``trimap`` 1.1.4 is used: 1.2 rewrote it on PyTorch (several GB). TriMap draws its triplets with
numba's random numbers, which are seeded here, so one thread gives the same result each time
(several threads draw in parallel and are not reproducible).
"""

from __future__ import annotations

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import boolean, choice, integer, number

BACKEND_MODULES = ("trimap",)
VERSIONED = ("trimap", "annoy", "numba")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"n_iters": 150}
PARAMS = {
    "n_inliers": integer(12, minimum=1, description="nearest neighbours forming triplets"),
    "n_outliers": integer(4, minimum=1, description="outliers per inlier"),
    "n_random": integer(3, minimum=0, description="random triplets per cell"),
    "lr": number(0.1, gt=0),
    "n_iters": integer(400, minimum=1),
    "apply_pca": boolean(True, "TriMap's own PCA to 100 dimensions for wider input"),
    "opt_method": choice(["dbd", "sd", "momentum"], "dbd"),
}


def _seed_numba(seed: int, threads: int) -> None:
    """numba keeps its own random state per thread, seeded only from inside compiled code: one
    thread gives the same triplets each time (the job's threads, as the runner pins them)."""
    import numba

    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))

    @numba.njit
    def seed_it(s):
        np.random.seed(s)  # noqa: NPY002 - numba has only the legacy global state

    seed_it(seed)
    np.random.seed(seed)  # noqa: NPY002 - TriMap draws from the global state


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    n_inliers: int = 12,
    n_outliers: int = 4,
    n_random: int = 3,
    lr: float = 0.1,
    n_iters: int = 400,
    apply_pca: bool = True,
    opt_method: str = "dbd",
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with TriMap; returns float32 ``(n, 2)``."""
    import trimap

    X = check_input(np.asarray(X, dtype=np.float32), "trimap", min_cells=5)
    check_neighbours("trimap", "n_inliers", n_inliers, X.shape[0], extra=1)
    _seed_numba(seed, threads)
    model = trimap.TRIMAP(
        n_dims=2,
        n_inliers=n_inliers,
        n_outliers=n_outliers,
        n_random=n_random,
        lr=lr,
        n_iters=n_iters,
        apply_pca=apply_pca,
        opt_method=opt_method,
        verbose=False,
    )
    emb = model.fit_transform(X)
    if info is not None:
        info["n_triplets_per_cell"] = n_inliers * n_outliers + n_random
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(
    n_cells: int, n_features: int, n_inliers: int = 12, n_outliers: int = 4, n_random=3, **params
) -> float:
    """Triplets (three int32 and a float32 weight each, four times over while they are drawn,
    sorted, weighted and optimised), the kNN lists four times (indices and distances, Annoy's
    and TriMap's), the input six times (float32 copies, TriMap's PCA, the Annoy index), plus
    ~375 MB of numba and the imports: 5.2 KB a cell, 7.2 GB at 1.3M cells. Fitted to the
    scaling ladder's peaks on the calibrated proxy (benchmarks/results/measured_peaks.tsv:
    424 MB at 10k cells, 882 at 100k, 6,997 at 1.3M, 5.1 KB a cell between the last two; the
    earlier model, triplets three times over, read 6.1 GB at 1.3M, below the peak)."""
    triplets = n_inliers * n_outliers + n_random
    per_cell = triplets * 16 * 4 + n_inliers * 16 * 4 + n_features * 4 * 6
    return n_cells * per_cell / 1e6 + 375


#: Measured peaks of the trimap job with its defaults (kernel high-water mark, 50 PCs, 2
#: threads) on the proxy generator at 30,000 cells (``src/scdrbench/data/proxy.py --n-cells 30000``,
#: version 2) and its fixed-seed 10k subsample, through the workflow's rules, 2026-12-05, on a
#: shared 2-core machine (issue 23): cells -> MB.
MEASURED_PEAK_MB = {10_000: 415, 30_000: 502}
