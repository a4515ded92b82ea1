"""Embedding methods, one module per algorithm, all with the same signature.

Every module ``src/scdrbench/methods/<algorithm>.py`` is the one declaration of its method::

    PARAMS = {name: JSON-schema property}   # names, types, ranges, defaults (see _params.py);
                                            # the config schema's params_<algorithm> is made
                                            # from it, so a typo is a ConfigError before any job
    BACKEND_MODULES = ("openTSNE",)         # imported before the fit is timed
    VERSIONED = ("openTSNE",)               # distributions whose versions the result records
    embed(X, *, seed, info=None, threads=1, **params) -> np.ndarray  # (n_cells, 2) float32
    estimate_memory_mb(n_cells, n_features, **params) -> float        # memory guard, budgets

and may set ``NARROWING_LAYERS`` (layer-width lists that must narrow towards the bottleneck,
checked at validation). ``tests/test_registry.py`` checks every module against these rules.

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


def _discover() -> tuple[str, ...]:
    """Every module of this package whose name does not start with an underscore."""
    import pkgutil

    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name[0] != "_"))


#: The algorithms: one module each, found on disk (adding a module adds an algorithm).
ALGORITHMS = _discover()


def import_backend(module: ModuleType) -> None:
    """Import a method module's ``BACKEND_MODULES``, with its ``BLOCKED_MODULES`` kept out.

    A blocked module that is not loaded yet is marked unimportable (``sys.modules[name] =
    None``) for the duration of the import, so the backend takes its ``ImportError`` fallback;
    a module loaded already (another method in the same process) is left alone.
    """
    import sys

    from scdrbench.common.runtime import quiet_tensorflow

    blocked = [m for m in getattr(module, "BLOCKED_MODULES", ()) if m not in sys.modules]
    for name in blocked:
        sys.modules[name] = None
    try:
        import warnings

        # a backend that is (or imports) TensorFlow starts quietly, as _nn.import_tensorflow does
        with warnings.catch_warnings(), quiet_tensorflow():
            warnings.simplefilter("ignore", ImportWarning)
            for name in getattr(module, "BACKEND_MODULES", ()):
                importlib.import_module(name)
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def get_method(algorithm: str) -> ModuleType:
    """Import ``scdrbench.methods.<algorithm>``; an unknown name lists the valid ones."""
    from scdrbench.common.errors import ScdrbenchError

    if algorithm not in ALGORITHMS:
        raise ScdrbenchError(
            f"unknown algorithm {algorithm!r}; valid algorithms: {', '.join(ALGORITHMS)}"
        )
    return importlib.import_module(f"scdrbench.methods.{algorithm}")
