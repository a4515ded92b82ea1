"""t-SNE with openTSNE's FFT-accelerated gradients (FIt-SNE's algorithm, Linderman et al. 2019).

Defaults follow Kobak & Berens 2019 (doi:10.1038/s41467-019-13056-x) for large data: PCA
initialisation (scaled to a small standard deviation by openTSNE), learning rate n/12
(Belkina et al. 2019), early exaggeration 12 for 250 iterations, then 750 iterations.

Memory is dominated by the kNN graph: ``k_neighbors`` per cell, 3 x perplexity by default
(openTSNE's rule). At high perplexity on many cells (the essay's perplexity 350 on 1.3M cells:
1,050 neighbours per cell, about 78 GiB at the peak) a smaller ``k_neighbors`` (at least the perplexity) bounds
it: the Gaussian kernel is calibrated to the same perplexity on the nearest ``k_neighbors`` cells,
which tends to uniform weights as ``k_neighbors`` approaches the perplexity (Kobak & Berens 2019
report that uniform affinities on a kNN graph give embeddings very close to perplexity-based ones).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from scripts.common.errors import ScdrbenchError
from scripts.methods._checks import check_input

# Imported by the runner before the fit is timed.
BACKEND_MODULES = ("openTSNE",)

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
) -> np.ndarray:
    """Embed ``X`` (cells x features) in 2-D with openTSNE; returns float32 ``(n, 2)``."""
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

    def record(iteration, error, embedding):
        kl_trace.append(float(error))
        log.info("iteration %d: KL divergence %.4f", iteration, error)

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
    if k_neighbors == "auto":
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
    log.info("final KL divergence %.4f", emb.kl_divergence)
    return np.asarray(emb, dtype=np.float32)


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
    n_cells: int, n_features: int, perplexity: float = 30, k_neighbors="auto", **params
) -> float:
    """About 54 bytes per neighbour and 4 KB per cell at the peak, the input, and 300 MB.

    openTSNE keeps the kNN indices and distances (int64 + float64), then builds the conditional
    affinities and their symmetrised sparse matrix. Fitted to ``benchmarks/bench_tsne.py`` and
    ``bench_memory.py`` (2 threads, 50 dimensions): 7.4 KB per cell with k = 90 (perplexity 30),
    23.1 KB with k = 350 and 60.8 KB with k = 1,050 (perplexity 350). At 1.3M cells and
    perplexity 350 that is about 78 GiB with k = 1,050 and 29 GiB with k = 350.
    """
    if k_neighbors == "auto":
        k = min(n_cells - 1, 3 * perplexity)
    else:
        k = min(n_cells - 1, int(k_neighbors))
    return (n_cells * (k * 54 + 4000) + n_cells * n_features * 4 * 2) / 1e6 + 300
