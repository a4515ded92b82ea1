"""The algorithm registry: the method modules found on disk, importing one, importing its backend.

Re-exported by ``scdrbench.methods``; the contract every module follows is in that package's
docstring and docs/adding-a-method.md.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def _discover() -> tuple[str, ...]:
    """Every module of this package whose name does not start with an underscore."""
    import pkgutil
    from pathlib import Path

    here = [str(Path(__file__).parent)]
    return tuple(sorted(m.name for m in pkgutil.iter_modules(here) if m.name[0] != "_"))


#: The algorithms: one module each, found on disk (adding a module adds an algorithm).
ALGORITHMS = _discover()


def import_backend(module: ModuleType) -> None:
    """Import a method module's ``BACKEND_MODULES``, with its ``BLOCKED_MODULES`` kept out.

    ``import umap`` imports TensorFlow (about 950 MB and 10-30 s) for its ParametricUMAP unless
    it is blocked (:func:`scdrbench.common.runtime.blocked_imports`): the backend then takes its
    ``ImportError`` fallback.
    """
    import warnings

    from scdrbench.common.runtime import blocked_imports, quiet_tensorflow

    # a backend that is (or imports) TensorFlow starts quietly, as _nn.import_tensorflow does
    with (
        blocked_imports(getattr(module, "BLOCKED_MODULES", ())),
        warnings.catch_warnings(),
        quiet_tensorflow(),
    ):
        warnings.simplefilter("ignore", ImportWarning)
        for name in getattr(module, "BACKEND_MODULES", ()):
            importlib.import_module(name)


def get_method(algorithm: str) -> ModuleType:
    """Import ``scdrbench.methods.<algorithm>``; an unknown name lists the valid ones."""
    from scdrbench.common.errors import ScdrbenchError

    if algorithm not in ALGORITHMS:
        raise ScdrbenchError(
            f"unknown algorithm {algorithm!r}; valid algorithms: {', '.join(ALGORITHMS)}"
        )
    return importlib.import_module(f"scdrbench.methods.{algorithm}")
