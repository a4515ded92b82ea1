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
