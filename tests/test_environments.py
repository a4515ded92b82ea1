"""The method contract's environments: every backend is pinned in pyproject.toml,
requirements.lock and its family's environment file; the environment files agree with the lock;
a family that cannot import its method's backend is a config error.

Fails when a backend is missing from its family's env file, when an env file pins another
version than the lock, or when a method entry's family cannot import its backend.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

import pytest
import yaml

from scdrbench.common import environments as envs
from scdrbench.common.config import ConfigError, validate_config
from scdrbench.methods import ALGORITHMS, get_method
from tests.conftest import ROOT

#: Distributions of the workflow's own process, never imported by a job.
WORKFLOW_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[envs.canonical(name)] = version
    return out


LOCK = _pins((ROOT / "requirements.lock").read_text().splitlines())
PYPROJECT = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
PAPER = yaml.safe_load((ROOT / "config.yaml").read_text())


def _env_files() -> dict[str, set[str]]:
    """``{env file: families}`` (the precomputed family shares the python family's file)."""
    out: dict[str, set[str]] = {}
    for family, path in envs.FAMILY_ENVS.items():
        out.setdefault(path, set()).add(family)
    return out


def _families_of() -> dict[str, set[str]]:
    """``{algorithm: families}`` the registry (config.yaml) runs it with."""
    out: dict[str, set[str]] = {}
    for entry in PAPER["methods"].values():
        out.setdefault(entry["algorithm"], set()).add(entry["family"])
    return out


def _backends(families: set[str]) -> set[str]:
    """The backend distributions (any one of each import's providers that the lock pins) of
    every algorithm the registry runs with one of ``families``."""
    found = set()
    for algorithm, used in _families_of().items():
        if used & families:
            for dists in envs.backend_distributions(get_method(algorithm)).values():
                found |= {d for d in dists if d in LOCK}
    return found


@pytest.mark.parametrize("name", ALGORITHMS)
def test_backends_are_pinned_in_pyproject_and_the_lock(name):
    for top, dists in envs.backend_distributions(get_method(name)).items():
        assert set(dists) & set(LOCK), (
            f"{name}: {top} ({' or '.join(dists)}) not in requirements.lock"
        )
        pinned = set(dists) & set(PYPROJECT)
        assert pinned, f"{name}: {top} ({' or '.join(dists)}) not in pyproject.toml dependencies"
        for dist in pinned:
            assert PYPROJECT[dist] == LOCK[dist], (dist, PYPROJECT[dist], LOCK[dist])


@pytest.mark.parametrize("path", sorted(_env_files()))
def test_env_file_has_its_familys_backends_and_the_librarys_needs(path):
    """An env file holds every backend of the methods its families run, and what the library
    itself needs in a job (pyproject's dependencies, less the workflow's own and the backends
    only other families' methods import)."""
    families = _env_files()[path]
    have = envs.parse_env((ROOT / path).read_text())
    own = _backends(families)
    others = _backends(set(envs.FAMILY_ENVS) - families) - own
    needed = own | (set(PYPROJECT) - WORKFLOW_ONLY - others)
    missing = sorted(needed - set(have))
    assert not missing, f"{path} lacks {missing} (pin them as requirements.lock does)"


@pytest.mark.parametrize("path", sorted(_env_files()))
def test_env_file_pins_the_locks_versions(path):
    have = envs.parse_env((ROOT / path).read_text())
    for name, version in have.items():
        assert name in LOCK, f"{path}: {name} is not in requirements.lock"
        assert version == LOCK[name], f"{path}: {name} {version}, requirements.lock {LOCK[name]}"


def test_env_files_install_the_package_itself():
    """A conda job runs `python scripts/<stage>.py`, which imports scdrbench: each env file has
    a post-deploy script (Snakemake runs it in the new environment) that installs the checkout
    in editable mode without dependencies (the env file pins those)."""
    for path in _env_files():
        script = (ROOT / path).with_suffix("").with_suffix(".post-deploy.sh")
        assert script.is_file(), f"{script.relative_to(ROOT)} is missing"
        text = script.read_text()
        assert "pip install --no-deps --editable" in text


def test_providers_agree_with_the_installed_distributions():
    """PROVIDERS (import name -> distribution) says what the installed metadata says: a new
    backend whose import name differs from its distribution's needs an entry."""
    installed = metadata.packages_distributions()
    tops = {top for name in ALGORITHMS for top in envs.backend_distributions(get_method(name))}
    for top in sorted(tops):
        providers = {envs.canonical(d) for d in installed.get(top, [])}
        assert providers, f"{top}: no installed distribution provides it"
        declared = set(envs.PROVIDERS.get(top, (top,)))
        assert providers <= {envs.canonical(d) for d in declared}, (top, providers, declared)


def test_parse_env_reads_conda_and_pip_entries():
    text = (
        "dependencies:\n  - python=3.11\n  - pip=25.3\n  - opentsne=1.0.4\n"
        "  - python-igraph=1.0.0\n  - pip:\n      - tensorflow-cpu==2.21.0\n      - -e ..\n"
    )
    assert envs.parse_env(text) == {
        "opentsne": "1.0.4",
        "igraph": "1.0.0",
        "tensorflow-cpu": "2.21.0",
    }


@pytest.mark.parametrize(
    "method, family, message",
    [
        (
            "ae_keras",
            "python",
            "config key 'methods.ae_keras.family': python runs in envs/python.yaml, which cannot "
            "import tensorflow, keras (the backend of src/scdrbench/methods/ae_keras.py); "
            "use family: tensorflow",
        ),
        (
            "pacmap",
            "tensorflow",
            "config key 'methods.pacmap.family': tensorflow runs in envs/tensorflow.yaml, which "
            "cannot import pacmap (the backend of src/scdrbench/methods/pacmap.py); use family: python",
        ),
    ],
)
def test_a_family_that_cannot_import_the_backend_is_a_config_error(method, family, message):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["methods"][method]["family"] = family
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert str(err.value) == message


def test_a_backend_missing_from_every_env_file_names_the_file_and_the_lock(tmp_path):
    (tmp_path / "envs").mkdir()
    for path in set(envs.FAMILY_ENVS.values()):
        text = (ROOT / path).read_text()
        (tmp_path / path).write_text(
            "\n".join(ln for ln in text.splitlines() if "pacmap" not in ln)
        )
    entry = PAPER["methods"]["pacmap"]
    assert envs.family_error("methods.pacmap", entry, root=str(tmp_path)) == (
        "config key 'methods.pacmap.family': python runs in envs/python.yaml, which cannot import "
        "pacmap (the backend of src/scdrbench/methods/pacmap.py); add pacmap (as pinned in "
        "requirements.lock) to envs/python.yaml"
    )
    assert envs.family_error("methods.pacmap", entry) is None  # the checkout's files have it
