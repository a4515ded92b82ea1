"""The conda environment of each method family, and whether it can import a method's backend.

A method entry's ``family`` picks the Snakemake rule and the environment file its jobs run in
(``snakemake --sdm conda``); the method module's ``BACKEND_MODULES`` name what the job imports.
A family whose environment file lacks a backend's distribution is a config error
(:func:`family_error`), and ``tests/test_environments.py`` checks the files against
``requirements.lock`` and ``pyproject.toml``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from scdrbench.common.paths import WORKFLOW_ROOT

#: The environment file of each family, relative to the checkout (rules/embed.smk reads it here).
FAMILY_ENVS = {
    "python": "envs/python.yaml",
    "tensorflow": "envs/tensorflow.yaml",
    "precomputed": "envs/python.yaml",
}

#: Import name -> the PyPI distributions that provide it, any one of them (the CPU or the GPU
#: build of TensorFlow), where the name differs from the distribution's.
#: ``tests/test_environments.py`` checks this against the installed distributions' metadata.
PROVIDERS = {
    "sklearn": ("scikit-learn",),
    "umap": ("umap-learn",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
}

#: conda-forge package -> PyPI distribution, where the names differ.
CONDA_TO_PYPI = {"python-igraph": "igraph", "matplotlib-base": "matplotlib"}

#: Not packages of a job's environment: the interpreter and the installer themselves.
NOT_PACKAGES = {"python", "pip"}


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (``openTSNE`` -> ``opentsne``)."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def backend_distributions(module) -> dict[str, tuple[str, ...]]:
    """``{import name: (distributions, any one provides it)}`` of a method module's
    ``BACKEND_MODULES``, canonical names (``umap.parametric_umap`` -> ``umap``: umap-learn)."""
    out = {}
    for name in getattr(module, "BACKEND_MODULES", ()):
        top = name.split(".")[0]
        out[top] = tuple(canonical(d) for d in PROVIDERS.get(top, (top,)))
    return out


def parse_env(text: str) -> dict[str, str]:
    """``{canonical PyPI name: pinned version}`` of a conda environment file's packages, conda
    (``name=1.0``) and pip (``name==1.0``) entries alike; pip options (``-e ...``) are left out."""
    import yaml

    found: dict[str, str] = {}

    def add(spec: str, conda: bool) -> None:
        if spec.startswith("-"):
            return
        sep = "=" if conda and "==" not in spec else "=="
        name, _, version = spec.partition(sep)
        name = name.strip()
        if conda:
            name = CONDA_TO_PYPI.get(name, name)
        if name not in NOT_PACKAGES:
            found[canonical(name)] = version.strip()

    for dep in yaml.safe_load(text).get("dependencies", []):
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                add(spec, conda=False)
        else:
            add(dep, conda=True)
    return found


@functools.cache
def env_packages(family: str, root: str = str(WORKFLOW_ROOT)) -> dict[str, str]:
    """The packages of ``family``'s environment file (see :func:`parse_env`)."""
    return parse_env((Path(root) / FAMILY_ENVS[family]).read_text())


def missing_backends(family: str, module, root: str = str(WORKFLOW_ROOT)) -> list[str]:
    """The backend import names of ``module`` that ``family``'s environment cannot import."""
    have = env_packages(family, root)
    return [
        top for top, dists in backend_distributions(module).items() if not set(dists) & set(have)
    ]


def family_error(key: str, entry: dict, root: str = str(WORKFLOW_ROOT)) -> str | None:
    """One line naming the config key and the fix when the entry's ``family`` cannot import its
    algorithm's backend (``ae_keras`` with ``family: python``: TensorFlow is not in
    envs/python.yaml), else None. No environment files (an installed copy without the
    checkout): nothing to check."""
    from scdrbench.methods import get_method

    if not (Path(root) / FAMILY_ENVS[entry["family"]]).is_file():
        return None
    module = get_method(entry["algorithm"])
    missing = missing_backends(entry["family"], module, root)
    if not missing:
        return None
    fits = [f for f in FAMILY_ENVS if f != "precomputed" and not missing_backends(f, module, root)]
    dists = [backend_distributions(module)[top][0] for top in missing]
    fix = (
        f"use family: {' or '.join(fits)}"
        if fits
        else f"add {', '.join(dists)} (as pinned in requirements.lock) to {FAMILY_ENVS[entry['family']]}"
    )
    return (
        f"config key '{key}.family': {entry['family']} runs in {FAMILY_ENVS[entry['family']]}, "
        f"which cannot import {', '.join(missing)} (the backend of "
        f"src/scdrbench/methods/{entry['algorithm']}.py); {fix}"
    )
