"""PCA, the linear baseline: two principal components of the preprocessed data.

The input is already the PCA of the log-normalised highly variable genes
(``results/data/{dataset}/pca.h5ad``), so the embedding is a column selection.
"""

from __future__ import annotations

import numpy as np

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods._checks import check_input
from scdrbench.methods._params import integers

#: the parameters (JSON-schema properties; see src/scdrbench/methods/_params.py)
PARAMS = {
    "components": integers(
        [1, 2], minimum=1, min_items=2, max_items=2, description="which PCs (1-based) to plot"
    ),
}
BACKEND_MODULES = ()
VERSIONED = ()
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {}


def embed(
    X, *, seed: int, info: dict | None = None, threads: int = 1, components=(1, 2)
) -> np.ndarray:
    """Return the PCs named by ``components`` (1-based) as an ``(n_cells, 2)`` array."""
    check_input(X, "pca")
    cols = [int(c) - 1 for c in components]
    if max(cols) >= X.shape[1] or min(cols) < 0:
        raise ScdrbenchError(
            f"pca: params.components {list(components)} out of range for {X.shape[1]} PCs"
        )
    return np.ascontiguousarray(np.asarray(X)[:, cols], dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """A copy of two columns."""
    return n_cells * 2 * 8 / 1e6
