"""Embedding methods, one module per algorithm, all with the same signature.

Every module ``src/scdrbench/methods/<algorithm>.py`` is the one declaration of its method::

    PARAMS = {name: JSON-schema property}   # types, ranges, defaults (_params.py); the config
                                            # schema's params_<algorithm> is made from it
    BACKEND_MODULES = ("openTSNE",)         # imported before the fit is timed; decides the family
    VERSIONED = ("openTSNE",)               # distributions whose versions the result records
    TEST_PARAMS = {"n_iter": 250}           # short settings the method tests run it with
    embed(X, *, seed, info=None, threads=1, **params) -> np.ndarray  # (n_cells, 2) float32
    estimate_memory_mb(n_cells, n_features, **params) -> float        # memory guard, budgets

and may set ``BLOCKED_MODULES`` (imports that must not load with the backend: ``import umap``
would import TensorFlow), ``NARROWING_LAYERS``, ``REQUIRED_PARAMS``, ``NEEDS_PROTEIN`` and
``NEEDS_OBS_NAMES``. ``info`` gets what the embedding file keeps in ``uns``. Modules import their
heavy libraries lazily (a fast dry run). tests/test_registry.py checks every module;
docs/adding-a-method.md is the checklist.
"""

from scdrbench.methods._registry import ALGORITHMS, get_method, import_backend

__all__ = ["ALGORITHMS", "get_method", "import_backend"]
