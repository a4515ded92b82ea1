"""t-SNE with openTSNE's FFT-accelerated gradients (FIt-SNE's algorithm, Linderman et al. 2019).

Defaults follow Kobak & Berens 2019 (doi:10.1038/s41467-019-13056-x) for large data: PCA
initialisation (scaled to a small standard deviation by openTSNE), learning rate n/12
(Belkina et al. 2019), early exaggeration 12 for 250 iterations, then 750 iterations.

Memory is dominated by the kNN graph: ``k_neighbors`` per cell, 3 x perplexity by default
(openTSNE's rule). At high perplexity on many cells (the essay's perplexity 350 on 1.3M cells:
1,050 neighbours per cell, about 85 GiB at the peak) a smaller ``k_neighbors`` (at least the perplexity) bounds
it: the Gaussian kernel is calibrated to the same perplexity on the nearest ``k_neighbors`` cells,
which tends to uniform weights as ``k_neighbors`` approaches the perplexity (Kobak & Berens 2019
report that uniform affinities on a kNN graph give embeddings very close to perplexity-based ones).

``exaggeration`` (late exaggeration, for all ``n_iter`` iterations after the early phase) is Kobak
& Berens' recipe for global structure on large data without a high perplexity: perplexity 30 and
exaggeration 4 (their 1.3M-cell embedding), the registry's ``tsne_exag``. The kNN graph, and so
memory and the per-iteration cost, stay those of perplexity 30 (``estimate_memory_mb`` has no
term for it); the learning rate stays n/12 (the early phase's; openTSNE's own 'auto' would take n /
exaggeration = n/4 here, a larger step).

``affinities: lean`` builds the same affinity matrix with openTSNE's own kNN index and perplexity
calibration, but without its dense float64 copies: conditional probabilities in float32 row
blocks, int32 neighbour indices, the kNN arrays freed before the symmetrisation, and one float64
copy at the end (openTSNE's gradient code needs float64). At 1.3M cells and k = 350 that is a
peak of about 15 GB instead of about 29 GB; the matrix equals openTSNE's to float32 precision
(``tests/test_methods_python.py``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods._checks import check_input
from scdrbench.methods._params import auto_or_integer, choice, integer, number

# Imported by the runner before the fit is timed.
BACKEND_MODULES = ("openTSNE",)
VERSIONED = ("openTSNE",)
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"n_iter": 250, "early_exaggeration_iter": 100, "perplexity": 20}
PARAMS = {
    "perplexity": number(30, gt=0),
    "n_iter": integer(750, minimum=50, description="iterations after early exaggeration"),
    "early_exaggeration_iter": integer(250, minimum=0),
    "exaggeration": number(
        minimum=1, description="late exaggeration (default none; Kobak & Berens use 4 for > 100k)"
    ),
    "learning_rate": {"default": "auto", "description": "'auto' = n/12 (Belkina et al. 2019)"},
    "initialization": choice(["pca", "random", "spectral"], "pca"),
    "negative_gradient_method": choice(["fft", "bh"], "fft"),
    "k_neighbors": auto_or_integer(
        2,
        "neighbours per cell in the kNN graph: 'auto' = 3 x perplexity (openTSNE), or a number "
        "at least the perplexity, which bounds memory at high perplexity on many cells",
    ),
    "affinities": choice(
        ["opentsne", "lean"],
        "opentsne",
        "opentsne: openTSNE's PerplexityBasedNN; lean: the same affinities built without its "
        "dense float64 copies (about half the peak memory at high perplexity)",
    ),
}

log = logging.getLogger("scdrbench.methods.tsne")


def _learning_rate(n: int, value) -> float:
    if value == "auto":
        return max(n / 12.0, 200.0)
    return float(value)


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    perplexity: float = 30,
    n_iter: int = 750,
    early_exaggeration_iter: int = 250,
    exaggeration: float | None = None,
    learning_rate="auto",
    initialization: str = "pca",
    negative_gradient_method: str = "fft",
    k_neighbors="auto",
    affinities: str = "opentsne",
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with openTSNE; returns float32 ``(n, 2)``."""
    # Longer than 80 lines: the signature and numpydoc docstring list every parameter of the method
    # contract (tests/test_registry.py checks them against PARAMS); the code is 72 lines, the seeded
    # steps in the order they draw random numbers.
    from openTSNE import TSNE

    X = check_input(np.asarray(X, dtype=np.float32), "tsne", min_cells=5)
    n = X.shape[0]
    if perplexity * 3 >= n:
        raise ScdrbenchError(
            f"tsne: params.perplexity {perplexity} is too large for {n} cells "
            f"(needs 3 x perplexity < n_cells); lower it to at most {(n - 1) // 3}"
        )
    k = _k_neighbors(n, perplexity, k_neighbors)
    kl_trace: list[float] = []
    stamps: list[float] = []

    def record(iteration, error, embedding):
        kl_trace.append(float(error))
        stamps.append(time.perf_counter())
        # the rate from the second report on (the first has no earlier stamp to count from)
        rate = ""
        if len(stamps) > 1:
            rate = f" ({(stamps[-1] - stamps[-2]) / 50:.3f} s per iteration)"
        # openTSNE counts each phase (early exaggeration, then the rest) from 0: log the total
        log.info("iteration %d: KL divergence %.4f%s", 50 * len(kl_trace), error, rate)

    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        learning_rate=_learning_rate(n, learning_rate),
        early_exaggeration_iter=early_exaggeration_iter,
        n_iter=n_iter,
        exaggeration=exaggeration,
        initialization=initialization,
        negative_gradient_method=negative_gradient_method,
        n_jobs=threads,
        random_state=seed,
        callbacks=record,
        callbacks_every_iters=50,
        verbose=False,
    )
    started = time.perf_counter()
    if affinities == "lean":
        P = lean_affinities(X, perplexity, k, threads=threads, seed=seed)
        log.info("affinities (k = %d): %.1f s", k, time.perf_counter() - started)
        stamps.append(time.perf_counter())  # the first report's per-iteration time: from here
        emb = tsne.fit(X, affinities=P)
        del P
    elif k_neighbors == "auto":
        emb = tsne.fit(X)
    else:
        from openTSNE.affinity import PerplexityBasedNN

        affinities = PerplexityBasedNN(
            X,
            perplexity=perplexity,
            k_neighbors=k,
            n_jobs=threads,
            random_state=seed,
            verbose=False,
        )
        emb = tsne.fit(X, affinities=affinities)
    if info is not None:
        info["k_neighbors"] = k
        info["kl_divergence"] = float(emb.kl_divergence)
        info["history"] = kl_trace
        info["learning_rate"] = _learning_rate(n, learning_rate)
        info["exaggeration"] = float(exaggeration or 1.0)
        if len(stamps) > 1:
            # the first callback comes 50 iterations into the optimisation
            info["seconds_per_iteration"] = (stamps[-1] - stamps[0]) / (50 * (len(stamps) - 1))
            info["affinity_and_init_seconds"] = (
                stamps[0] - started - 50 * info["seconds_per_iteration"]
            )
    log.info("final KL divergence %.4f", emb.kl_divergence)
    return np.asarray(emb, dtype=np.float32)


def lean_affinities(X, perplexity: float, k: int, *, threads: int = 1, seed: int = 0):
    """openTSNE's perplexity-based kNN affinities, symmetrised and normalised, built lean.

    The same steps as ``openTSNE.affinity.PerplexityBasedNN`` (its kNN index chosen the same
    way, its Gaussian calibration), with the memory of each step freed before the next.
    Returns an ``openTSNE.affinity.PrecomputedAffinities``.
    """
    import scipy.sparse as sp
    from openTSNE import _tsne
    from openTSNE.affinity import PrecomputedAffinities, get_knn_index

    n = X.shape[0]
    index = get_knn_index(X, "auto", k, "euclidean", n_jobs=threads, random_state=seed)
    neighbours, distances = index.build()
    del index
    log.info("lean affinities: %d x %d neighbours found", n, k)
    cond = np.empty((n, k), dtype=np.float32)
    step = max(1, (1 << 22) // k)
    perplexities = np.array([perplexity], dtype=float)
    for start in range(0, n, step):
        block = np.ascontiguousarray(distances[start : start + step], dtype=float)
        cond[start : start + step] = _tsne.compute_gaussian_perplexity(
            block, perplexities, num_threads=threads
        )
    del distances
    cols = neighbours.astype(np.int32).ravel()
    del neighbours
    index_dtype = np.int32 if n * k < 2**31 - 1 else np.int64
    P = sp.csr_matrix(
        (cond.ravel(), cols, np.arange(0, n * k + 1, k, dtype=index_dtype)), shape=(n, n)
    )
    del cond, cols
    Pt = P.T.tocsr()
    P = P + Pt
    del Pt
    data = P.data.astype(np.float64)
    data /= data.sum()
    P = sp.csr_matrix((data, P.indices, P.indptr), shape=(n, n))
    log.info("lean affinities: %d non-zeros after symmetrisation", P.nnz)
    return PrecomputedAffinities(P, normalize=False)


def _k_neighbors(n: int, perplexity: float, k_neighbors) -> int:
    """Neighbours per cell in the kNN graph: 3 x perplexity for 'auto', else checked."""
    if k_neighbors == "auto":
        return int(min(n - 1, 3 * perplexity))
    k = int(k_neighbors)
    if k < perplexity:
        raise ScdrbenchError(
            f"tsne: params.k_neighbors {k} is below params.perplexity {perplexity}; openTSNE "
            f"would silently lower the perplexity. Use at least {math.ceil(perplexity)} "
            "(or 'auto': 3 x perplexity)"
        )
    if k >= n:
        raise ScdrbenchError(
            f"tsne: params.k_neighbors {k} needs more than {k} cells, the data has {n}; "
            f"lower it to at most {n - 1} (or use 'auto')"
        )
    return k


def estimate_memory_mb(
    n_cells: int,
    n_features: int,
    perplexity: float = 30,
    k_neighbors="auto",
    affinities: str = "opentsne",
    **params,
) -> float:
    """About 60 bytes per neighbour and 3 KB per cell at the peak, the input, and 400 MB.

    openTSNE keeps the kNN indices and distances (int64 + float64), then builds the conditional
    affinities and their symmetrised sparse matrix. Fitted to ``benchmarks/bench_tsne.py`` and
    ``bench_memory.py`` (2 threads, 50 dimensions): 7.4 KB per cell with k = 90 (perplexity 30),
    23.1 KB with k = 350 and 60.8 KB with k = 1,050 (perplexity 350); 54 bytes per neighbour
    until the scaling ladder's 300k job at k = 1,050 peaked at 19,195 MB, 2.5% above that model,
    and 56 (with 4 KB a cell) until its 100k job on the calibrated proxy peaked at 6,842 MB,
    1.8% above that one; 60 bytes and 3 KB hold every ladder peak of k = 90 (tsne, tsne_exag:
    up to 11,276 MB at 1.3M) and k = 1,050 (tsne_p350) between 1.0 and 1.2 times.
    At 1.3M cells and perplexity 350 that is about 85 GiB with k = 1,050 and 32 GiB with
    k = 350. The jobs of the scaling ladder stay below it (benchmarks/results/measured_peaks.tsv,
    jobs tsne and tsne_p350), and 17,275 MB at 1.3M with k = 350 and lean affinities.
    """
    if k_neighbors == "auto":
        k = min(n_cells - 1, 3 * perplexity)
    else:
        k = min(n_cells - 1, int(k_neighbors))
    if affinities == "lean":
        per_neighbour, per_cell = LEAN_BYTES_PER_NEIGHBOUR, 4000
    else:
        per_neighbour, per_cell = 60, 3000
    return (n_cells * (k * per_neighbour + per_cell) + n_cells * n_features * 4 * 2) / 1e6 + 400


#: Peak bytes per neighbour per cell of ``affinities: lean``: the kNN arrays (16) while the
#: float32 conditional probabilities (4) are made, then up to 2k symmetric non-zeros held as
#: float32 + int32 and their float64 copy (about 1.6k in practice). Measured by the scaling
#: ladder (k = 350, 50 PCs, 2 threads): 434 MB at 10k cells, 1,588 MB at 100k, 17,275 MB at 1.3M,
#: where this model says 549, 1,890 and 19,861 MB (on the safe side of the guard).
LEAN_BYTES_PER_NEIGHBOUR = 30
