"""Embedding methods, one module per algorithm, all with the same signature.

Every module ``scripts/methods/<algorithm>.py`` provides::

    embed(X, *, seed, info=None, threads=1, **params) -> np.ndarray  # (n_cells, 2) float32
    estimate_memory_mb(n_cells, n_features, **params) -> float        # for the memory guard

and may set ``BACKEND_MODULES`` (names the runner imports before the fit is timed, so
``fit_seconds`` excludes library start-up) and ``BLOCKED_MODULES`` (optional imports of a
backend that the method does not need and that must not load with it: ``import umap`` imports
TensorFlow, about 950 MB and 10-30 s, for its ParametricUMAP unless it is blocked). ``info`` (a dict, optional) is filled with what the method wants kept in the embedding file's
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


def import_backend(module: ModuleType) -> None:
    """Import a method module's ``BACKEND_MODULES``, with its ``BLOCKED_MODULES`` kept out.

    A blocked module that is not loaded yet is marked unimportable (``sys.modules[name] =
    None``) for the duration of the import, so the backend takes its ``ImportError`` fallback;
    a module loaded already (another method in the same process) is left alone.
    """
    import sys

    blocked = [m for m in getattr(module, "BLOCKED_MODULES", ()) if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImportWarning)
            for name in getattr(module, "BACKEND_MODULES", ()):
                importlib.import_module(name)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def get_method(algorithm: str) -> ModuleType:
    """Import ``scripts.methods.<algorithm>``; an unknown name lists the valid ones."""
    from scripts.common.errors import ScdrbenchError

    if algorithm not in ALGORITHMS:
        raise ScdrbenchError(
            f"unknown algorithm {algorithm!r}; valid algorithms: {', '.join(ALGORITHMS)}"
        )
    return importlib.import_module(f"scripts.methods.{algorithm}")
