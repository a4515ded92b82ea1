"""Random control: i.i.d. standard normal coordinates, ignoring the data (the score floor)."""

from __future__ import annotations

import numpy as np

from scdrbench.methods._checks import check_input

PARAMS: dict = {}
BACKEND_MODULES = ()
VERSIONED = ()
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {}


def embed(X, *, seed: int, info: dict | None = None, threads: int = 1) -> np.ndarray:
    """Return ``(n_cells, 2)`` standard normal coordinates drawn with ``seed``."""
    check_input(X, "random", min_dims=1)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((X.shape[0], 2)).astype(np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Two float32 coordinates per cell."""
    return n_cells * 2 * 8 / 1e6
