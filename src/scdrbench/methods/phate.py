"""PHATE (Moon et al. 2019, Nature Biotechnology 37:1482) with the authors' ``phate``.

Potential of heat-diffusion for affinity-based transition embedding: an alpha-decay kernel on
the kNN graph (knn 5, decay 40), diffused t steps (t chosen by the knee of the von Neumann
entropy), log potential distances, then metric MDS (SGD solver) on 2,000 landmarks: the
library's defaults. The input is already 50 PCs, so PHATE's own PCA (100) is a no-op.
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._params import choice, integer, number

BACKEND_MODULES = ("phate",)
VERSIONED = ("phate", "graphtools")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {}
PARAMS = {
    "knn": integer(5, minimum=2, description="neighbours of the alpha-decay kernel"),
    "decay": number(40, gt=0, description="alpha of the alpha-decay kernel"),
    "t": {"default": "auto", "description": "diffusion steps: 'auto' (knee) or an integer"},
    "gamma": number(1.0, minimum=-1, maximum=1, description="1: log potential, 0: sqrt"),
    "n_landmark": integer(2000, minimum=10, description="landmarks of the diffusion operator"),
    "mds_solver": choice(["sgd", "smacof"], "sgd"),
}


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    knn: int = 5,
    decay: float = 40,
    t="auto",
    gamma: float = 1.0,
    n_landmark: int = 2000,
    mds_solver: str = "sgd",
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with PHATE; returns float32 ``(n, 2)``."""
    import phate

    from scdrbench.common.errors import ScdrbenchError

    X = check_input(np.asarray(X, dtype=np.float32), "phate", min_cells=10)
    check_neighbours("phate", "knn", knn, X.shape[0])
    if t != "auto" and (not isinstance(t, int) or t < 1):
        raise ScdrbenchError(f"phate: params.t must be 'auto' or a positive integer, got {t!r}")
    model = phate.PHATE(
        n_components=2,
        knn=knn,
        decay=decay,
        t=t,
        gamma=gamma,
        n_landmark=n_landmark if X.shape[0] > n_landmark else None,
        n_pca=None,
        mds_solver=mds_solver,
        n_jobs=threads,
        random_state=seed,
        verbose=2,
    )
    # PHATE and graphtools speak through one logger ("graphtools"), which prints to stdout
    # (SGD-MDS's "may not have converged ..." whatever ``verbose`` says): into the job's log
    # instead, at ``verbose=2``, so that the log times each step ("Calculated KNN search in
    # 812.40 seconds.", "radius search on 180", the landmark SVD and k-means, MDS) and a job
    # stopped by its budget at 1.3M cells says where it was.
    graphtools_log = logging.getLogger("graphtools")
    saved = graphtools_log.handlers[:], graphtools_log.propagate
    graphtools_log.handlers, graphtools_log.propagate = [_ToJobLog()], False
    try:
        emb = model.fit_transform(X)
    finally:
        graphtools_log.handlers, graphtools_log.propagate = saved
    if info is not None:
        info["t"] = int(model.optimal_t if t == "auto" else t)
        # landmarks the diffusion ran on (0: none, the cells themselves when n <= n_landmark)
        info["n_landmark"] = int(getattr(model.graph, "n_landmark", None) or 0)
    return np.asarray(emb, dtype=np.float32)


class _ToJobLog(logging.Handler):
    """A library's log record, passed to the job's log at INFO (not to the console)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("scdrbench.methods.phate").info(
            "graphtools %s: %s", record.levelname.lower(), record.getMessage().rstrip()
        )


#: Measured peaks (kernel high-water mark, 50 PCs, 2 threads) on the proxy generator at 30,000
#: cells (``src/scdrbench/data/proxy.py --n-cells 30000``, version 2) and its fixed-seed 10k
#: subsample, through the workflow's rules, 2026-12-05, on a shared 2-core machine (issue 23):
#: cells -> MB. The defaults (2,000 landmarks), then ``phate_lean`` (1,000).
MEASURED_PEAK_MB = {10_000: 607, 30_000: 665}
MEASURED_PEAK_MB_LEAN = {10_000: 442, 30_000: 580}


def estimate_memory_mb(
    n_cells: int, n_features: int, knn: int = 5, n_landmark: int = 2000, **params
) -> float:
    """Per cell: the alpha-decay kNN kernel (graphtools keeps up to ~10 x knn neighbours, float64
    + int32), the input twice, and graphtools' landmark clustering (``randomized_svd`` of the
    diffusion operator to 100 float64 components, the k-means input): 6.9 KB a cell, the slope
    of MEASURED_PEAK_MB_LEAN. Per landmark pair: the dense landmark operator, its powers and
    potential distances and the MDS's copies, about seven float64 matrices of landmarks x
    landmarks (of cells x cells below ``n_landmark`` cells); plus ~330 MB of imports. Landmarks
    are not a cells x landmarks matrix (the earlier model's 22.6 GB at 1.3M cells): 1,000
    landmarks more cost 165 MB at 10k cells and 85 MB at 30k, not more. About 9.6 GB at 1.3M
    cells with 2,000 landmarks, 9.4 GB with ``phate_lean``'s 1,000, which saves time (half the
    fit at 30k cells), not memory.
    """
    per_cell = knn * 10 * 12 + n_features * 4 * 2 + 5_900
    square = min(n_cells, n_landmark) ** 2 * 56
    return (n_cells * per_cell + square) / 1e6 + 333
