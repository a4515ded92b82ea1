"""Embedding methods, one module per algorithm, all with the same signature.

Every module ``scripts/methods/<algorithm>.py`` provides::

    embed(X, *, seed, info=None, threads=1, **params) -> np.ndarray  # (n_cells, 2) float32
    estimate_memory_mb(n_cells, n_features, **params) -> float        # for the memory guard

and may set ``BACKEND_MODULES`` (names the runner imports before the fit is timed, so
``fit_seconds`` excludes library start-up). ``info`` (a dict, optional) is filled with what the method wants kept in the embedding file's
``uns`` (loss history, iterations, device). Modules import their heavy libraries lazily so the
workflow's dry run stays fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ALGORITHMS = (
    "random",
    "pca",
    "tsne",
    "umap",
    "ae_keras",
    "ae_tf",
    "scvis",
    "tsne_ae",
    "parametric_umap",
)


def get_method(algorithm: str) -> ModuleType:
    """Import ``scripts.methods.<algorithm>``; an unknown name lists the valid ones."""
    from scripts.common.errors import ScdrbenchError

    if algorithm not in ALGORITHMS:
        raise ScdrbenchError(
            f"unknown algorithm {algorithm!r}; valid algorithms: {', '.join(ALGORITHMS)}"
        )
    return importlib.import_module(f"scripts.methods.{algorithm}")
