"""Positive control: the method's high-dimensional input itself, unreduced ("true features").

As in Open Problems' dimensionality-reduction task: every metric that compares an embedding with
the input (kNN and class-mean preservation, distance correlation, trustworthiness, co-ranking)
is at its best here, which fixes the top of the scaled scores. It is not a 2-D picture: the
figures draw its first two columns (for PCA input, PCs 1 and 2).
"""

from __future__ import annotations

import numpy as np

from scdrbench.methods._checks import check_input

PARAMS: dict = {}
BACKEND_MODULES = ()
VERSIONED = ()
#: the embedding keeps every input dimension (the runner accepts ``(n, d)`` for this module)
OUTPUT_DIMS = "input"


def embed(X, *, seed: int, info: dict | None = None, threads: int = 1) -> np.ndarray:
    """Return ``X`` as float32 (cells x input dimensions)."""
    check_input(X, "true_features", min_dims=1)
    return np.ascontiguousarray(X, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """One float32 copy of the input."""
    return n_cells * n_features * 4 / 1e6
