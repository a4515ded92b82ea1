"""Input checks shared by the method modules."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError


def check_input(X, name: str, *, min_cells: int = 3, min_dims: int = 2):
    """Reject empty, too small or non-finite input with a message naming the method."""
    if X.ndim != 2:
        raise ScdrbenchError(f"{name}: input must be a 2-D cells x features matrix, got {X.ndim}-D")
    n, d = X.shape
    if n < min_cells:
        raise ScdrbenchError(f"{name}: needs at least {min_cells} cells, got {n}")
    if d < min_dims:
        raise ScdrbenchError(f"{name}: needs at least {min_dims} input dimensions, got {d}")
    values = X.data if sp.issparse(X) else X
    if not np.all(np.isfinite(values)):
        raise ScdrbenchError(
            f"{name}: input contains NaN or infinite values; check the preprocessing output"
        )
    return X


def check_neighbours(name: str, param: str, value: int, n_cells: int, *, extra: int = 0) -> None:
    """A neighbourhood size must leave cells to spare: ``value + extra < n_cells``."""
    if value + extra >= n_cells:
        raise ScdrbenchError(
            f"{name}: params.{param} {value} must be smaller than the number of cells "
            f"({n_cells}{f' - {extra}' if extra else ''}); lower it or use more cells"
        )
