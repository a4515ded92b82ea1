"""PHATE (Moon et al. 2019, Nature Biotechnology 37:1482) with the authors' ``phate``.

Potential of heat-diffusion for affinity-based transition embedding: an alpha-decay kernel on
the kNN graph (knn 5, decay 40), diffused t steps (t chosen by the knee of the von Neumann
entropy), log potential distances, then metric MDS (SGD solver) on 2,000 landmarks: the
library's defaults. The input is already 50 PCs, so PHATE's own PCA (100) is a no-op.

Neighbours at scale: graphtools finds each cell's neighbours with scikit-learn's exact search,
brute force on 50 dimensions, quadratic in cells (55 of the 63 min of a 1.3M fit on 2 threads,
the scaling ladder's job's log). ``neighbors: nndescent`` answers the same
queries (each cell's ``6 x (knn + 1)`` nearest, graphtools' first search) from pynndescent's
approximate index (umap-learn's) and sets ``knn_max`` to them, PHATE's own setting "for very
large datasets", so graphtools never falls back to a radius search; the alpha-decay kernel,
landmarks, diffusion and MDS are graphtools' and PHATE's as before.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

from scdrbench.methods._checks import check_input, check_neighbours
from scdrbench.methods._joblog import peak_rss_mb
from scdrbench.methods._params import choice, integer, number

BACKEND_MODULES = ("phate", "graphtools")  # graphtools: neighbors: nndescent builds its graph
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
    "neighbors": choice(
        ["exact", "nndescent"],
        "exact",
        description="graphtools' exact kNN search (quadratic in cells) or pynndescent's "
        "approximate one, with knn_max = 6 x (knn + 1) - 1",
    ),
}
#: graphtools' first search asks for this many neighbours per cell (kNNGraph.search_multiplier)
SEARCH_MULTIPLIER = 6


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
    neighbors: str = "exact",
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with PHATE; returns float32 ``(n, 2)``."""
    import phate

    from scdrbench.common.errors import ScdrbenchError

    X = check_input(np.asarray(X, dtype=np.float32), "phate", min_cells=10)
    check_neighbours("phate", "knn", knn, X.shape[0])
    if t != "auto" and (not isinstance(t, int) or t < 1):
        raise ScdrbenchError(f"phate: params.t must be 'auto' or a positive integer, got {t!r}")
    landmarks = n_landmark if X.shape[0] > n_landmark else None
    search = SEARCH_MULTIPLIER * (knn + 1)
    knn_max = min(search, X.shape[0]) - 1 if neighbors == "nndescent" else None
    # PHATE and graphtools speak through one logger ("graphtools"), which prints to stdout
    # (SGD-MDS's "may not have converged ..." whatever ``verbose`` says): into the job's log
    # instead, from the model's construction on (it logs its level), at ``verbose=2``, so that
    # the log times each step ("Calculated KNN search in 812.40 seconds.", "radius search on
    # 180", the landmark SVD and k-means, MDS) and a job stopped by its budget says where it was.
    with _graphtools_to_job_log():
        model = phate.PHATE(
            n_components=2,
            knn=knn,
            decay=decay,
            t=t,
            gamma=gamma,
            n_landmark=landmarks,
            n_pca=None,
            knn_max=knn_max,
            mds_solver=mds_solver,
            n_jobs=threads,
            random_state=seed,
            verbose=2,
        )
        if neighbors == "nndescent":
            graph = _approximate_graph(X, knn, decay, knn_max, landmarks, seed, threads)
            emb = model.fit_transform(graph)
        else:
            emb = model.fit_transform(X)
    if info is not None:
        info["t"] = int(model.optimal_t if t == "auto" else t)
        # landmarks the diffusion ran on (0: none, the cells themselves when n <= n_landmark)
        info["n_landmark"] = int(getattr(model.graph, "n_landmark", None) or 0)
        info["neighbors"] = neighbors
    return np.asarray(emb, dtype=np.float32)


def _approximate_graph(X, knn, decay, knn_max, n_landmark, seed, threads):
    """PHATE's graph (graphtools' kNN or landmark graph, as ``phate.PHATE.fit`` builds it) whose
    neighbour searches pynndescent answers: built uninitialised, given the index, then its
    kernel computed by graphtools."""
    import graphtools

    graph = graphtools.Graph(
        X,
        n_pca=None,
        knn=knn,
        knn_max=knn_max,
        decay=decay,
        thresh=1e-4,  # PHATE's
        n_landmark=n_landmark,
        n_jobs=threads,
        random_state=seed,
        verbose=2,
        initialize=False,
    )
    # graphtools keeps its search index in ``_knn_tree`` (``kNNGraph.knn_tree`` builds an exact
    # scikit-learn one when it is absent)
    graph._knn_tree = _NNDescentSearch(X, knn_max + 1, seed=seed, threads=threads)
    _ = graph.K  # the kernel, now: PHATE takes a given graph as it is
    return graph


class _NNDescentSearch:
    """The part of scikit-learn's ``NearestNeighbors`` that graphtools' kNN kernel uses
    (``kneighbors``), answered by pynndescent: the index's own neighbour lists for the data it
    was built on, its ``query`` for other points (graphtools' second look at some cells)."""

    def __init__(self, X, n_neighbors: int, *, seed: int, threads: int):
        import time

        from pynndescent import NNDescent

        self._X = X
        self.n_neighbors = n_neighbors
        start = time.perf_counter()
        self.index = NNDescent(
            X, n_neighbors=n_neighbors, random_state=seed, n_jobs=threads, low_memory=True
        )
        logging.getLogger("scdrbench.methods.phate").info(
            "pynndescent: %d neighbours of %d cells in %.2f s",
            n_neighbors,
            X.shape[0],
            time.perf_counter() - start,
        )

    def kneighbors(self, Y=None, n_neighbors=None, return_distance=True):
        k = n_neighbors or self.n_neighbors
        if Y is None or (Y.shape == self._X.shape and np.array_equal(Y, self._X)):
            if k > self.n_neighbors:
                raise ValueError(f"{k} neighbours asked of an index of {self.n_neighbors}")
            idx, dist = self.index.neighbor_graph
            idx, dist = idx[:, :k].copy(), dist[:, :k].astype(np.float64)
        else:
            idx, dist = self.index.query(np.asarray(Y, dtype=np.float32), k=k)
            dist = dist.astype(np.float64)
        # a neighbour the approximate search did not fill (-1): a placeholder (the row's own
        # number), infinitely far, which the alpha-decay kernel weighs 0 and graphtools drops
        missing = idx < 0
        if missing.any():
            own = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
            idx[missing], dist[missing] = own[missing], np.inf
        return (dist, idx) if return_distance else idx

    def radius_neighbors(self, *args, **kwargs):
        raise NotImplementedError("knn_max bounds graphtools' search: no radius search")


@contextlib.contextmanager
def _graphtools_to_job_log():
    """graphtools' logger (PHATE's too) to the job's log, its handlers and level restored after;
    PHATE's Python warnings ("Graph is disconnected with 5 connected components ...") too."""
    log = logging.getLogger("graphtools")
    saved = log.handlers[:], log.propagate, log.level
    log.handlers, log.propagate = [_ToJobLog()], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        log.handlers, log.propagate = saved[0], saved[1]
        log.setLevel(saved[2])
    for warning in caught:
        logging.getLogger("scdrbench.methods.phate").info(
            "phate %s: %s", warning.category.__name__, str(warning.message).strip()
        )


class _ToJobLog(logging.Handler):
    """A library's log record, passed to the job's log at INFO (not to the console). A step's
    end ("Calculated KNN search in 12.3 seconds.") also says the process's peak RSS so far, so
    the log shows which step raised the job's peak."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage().rstrip()
        if message.lstrip().startswith("Calculated "):
            message += f" (peak RSS so far {peak_rss_mb():,.0f} MB)"
        logging.getLogger("scdrbench.methods.phate").info(
            "graphtools %s: %s", record.levelname.lower(), message
        )


#: Measured peaks (kernel high-water mark, 50 PCs, 2 threads) on the proxy generator at 30,000
#: cells (``src/scdrbench/data/proxy.py --n-cells 30000``, version 2) and its fixed-seed 10k
#: subsample, through the workflow's rules, 2026-12-05, on a shared 2-core machine (issue 23):
#: cells -> MB. The defaults (2,000 landmarks), then ``phate_lean`` (1,000).
MEASURED_PEAK_MB = {10_000: 607, 30_000: 665}
MEASURED_PEAK_MB_LEAN = {10_000: 442, 30_000: 580}


#: graphtools' exact path: after its first search (6 x (knn + 1) neighbours a cell), the cells
#: whose kernel still reaches past their last neighbour (those in dense clumps) get a radius
#: search, all with the LARGEST radius among them (graphs.py: ``np.max(radius[update_idx])``),
#: and it returns every cell within it, float64 distances and int64 indices, which graphtools
#: copies into its CSR kernel before the affinities under ``thresh`` are dropped. Both the
#: cells searched and the neighbours each finds grow with the cells, so this transient grows
#: with cells squared. On the calibrated proxy's PCs (``benchmarks/phate_radius.py``,
#: benchmarks/results/phate_radius.md): 34 of 100,000 cells searched, 11,946 neighbours each
#: within the largest radius; 2,713 of 1,306,127 cells at 1.3M (the job's log). Bytes per
#: cell pair, fitted to the 1.3M job's 17,435 MB peak with 10% margin (the linear terms leave
#: 7.9 GB of it).
RADIUS_BYTES_PER_CELL_PAIR = 5.6e-3


def estimate_memory_mb(
    n_cells: int,
    n_features: int,
    knn: int = 5,
    n_landmark: int = 2000,
    neighbors: str = "exact",
    **params,
) -> float:
    """Per cell: the alpha-decay kNN kernel (graphtools keeps up to ~10 x knn neighbours, float64
    + int32), the input twice, and graphtools' landmark clustering (``randomized_svd`` of the
    diffusion operator to 100 float64 components, the k-means input): 6.9 KB a cell, the slope
    of MEASURED_PEAK_MB_LEAN. Per landmark pair: the dense landmark operator, its powers and
    potential distances and the MDS's copies, about seven float64 matrices of landmarks x
    landmarks (of cells x cells below ``n_landmark`` cells); plus ~330 MB of imports. Landmarks
    are not a cells x landmarks matrix (the earlier model's 22.6 GB at 1.3M cells): 1,000
    landmarks more cost 165 MB at 10k cells and 85 MB at 30k, not more. ``neighbors: exact``
    (graphtools' own search) adds its radius search, cells squared
    (RADIUS_BYTES_PER_CELL_PAIR): 56 MB at 100k cells, 9.6 GB at 1.3M, where the defaults'
    job peaked at 17.4 GB (the linear terms alone said 9.6 GB). ``neighbors: nndescent`` never
    searches a radius (``knn_max``); it adds pynndescent's index: its neighbour lists (6 x
    (knn + 1) indices and distances a cell), its heap while it builds and the search graph its
    queries use, about four times the lists, and ~200 MB of numba's compiled pynndescent.
    Against the scaling ladder's peaks on the calibrated proxy
    (benchmarks/results/measured_peaks.tsv): ``phate`` 619, 702, 1,093 and 17,435 MB at 10k,
    30k, 100k and 1.3M cells, this model 627, 769, 1,303 and 19,123; ``phate_lean`` 658,
    1,351 and 10,375 at 10k, 100k and 1.3M, this model 670, 1,394 and 11,106.
    """
    per_cell = knn * 10 * 12 + n_features * 4 * 2 + 5_900
    constant = 333
    pairs = 0.0
    if neighbors == "nndescent":
        per_cell += SEARCH_MULTIPLIER * (knn + 1) * 8 * 4
        constant += 200
    else:
        pairs = float(n_cells) ** 2 * RADIUS_BYTES_PER_CELL_PAIR
    square = min(n_cells, n_landmark) ** 2 * 56
    return (n_cells * per_cell + square + pairs) / 1e6 + constant
