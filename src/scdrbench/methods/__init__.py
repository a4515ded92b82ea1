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
checked at validation) and ``BLOCKED_MODULES`` (optional imports of a backend that must not load
with it: :func:`import_backend`). ``info`` is filled with what the method wants kept in the
embedding file's ``uns`` (loss history, iterations, device). Modules import their heavy
libraries lazily so the workflow's dry run stays fast. ``tests/test_registry.py`` checks every
module against these rules.
"""

from scdrbench.methods._registry import ALGORITHMS, get_method, import_backend

__all__ = ["ALGORITHMS", "get_method", "import_backend"]
