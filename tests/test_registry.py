"""Every method module is its method's one declaration, and every registry agrees with it.

Fails when a module loses a declaration (PARAMS, BACKEND_MODULES, VERSIONED, embed,
estimate_memory_mb), when PARAMS and the embed signature disagree (a name or a default), when a
backend or distribution cannot be found, or when the config names an algorithm with no module.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from scdrbench.common.config import ConfigError, load_schema, validate_config
from scdrbench.methods import ALGORITHMS, get_method
from tests.conftest import ROOT, method_cases

#: keyword arguments every embed() takes that are not parameters of the method
RUNNER_ARGS = {"seed", "info", "threads"}


def test_algorithms_are_the_modules_on_disk():
    on_disk = sorted(
        p.stem
        for p in (ROOT / "src" / "scdrbench" / "methods").glob("*.py")
        if not p.stem.startswith("_")
    )
    assert list(ALGORITHMS) == on_disk


@pytest.mark.parametrize("name", ALGORITHMS)
def test_module_declares_everything(name):
    module = get_method(name)
    for attr in ("PARAMS", "BACKEND_MODULES", "VERSIONED", "embed", "estimate_memory_mb"):
        assert hasattr(module, attr), f"src/scdrbench/methods/{name}.py does not declare {attr}"
    assert isinstance(module.PARAMS, dict)
    for backend in module.BACKEND_MODULES:
        assert importlib.util.find_spec(backend.split(".")[0]) is not None, backend
    found = []
    for dist in module.VERSIONED:
        try:
            found.append(metadata.version(dist))
        except metadata.PackageNotFoundError:
            continue
    assert found or not module.VERSIONED, f"{name}: none of {module.VERSIONED} is installed"


#: Algorithms the generic method tests cannot run (they need protein counts or cell names beside
#: the matrix), and the test file that runs each one's embed.
OWN_TESTS = {"ae_citeseq": "test_citeseq.py", "precomputed": "test_precomputed.py"}


def _embed_calls(path: Path, name: str) -> int:
    """Calls of ``name``'s embed in a test file: ``get_method("name").embed(...)``, or
    ``x.embed(...)`` where ``x = get_method("name")``, or ``name.embed(...)`` after
    ``from scdrbench.methods import name``."""
    tree = ast.parse(path.read_text())
    aliases = (
        {name}
        if any(
            isinstance(n, ast.ImportFrom)
            and n.module == "scdrbench.methods"
            and any(a.name == name for a in n.names)
            for n in ast.walk(tree)
        )
        else set()
    )

    def is_get(node):
        return (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "get_method"
            and [getattr(a, "value", None) for a in node.args] == [name]
        )

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_get(node.value):
            aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return sum(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "embed"
        and (is_get(n.func.value) or getattr(n.func.value, "id", None) in aliases)
        for n in ast.walk(tree)
    )


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_has_a_test(name):
    """The generic method tests (shape, seeds, quality, bad input, memory model) run every module
    that declares TEST_PARAMS; a module they cannot run has a test file of its own that runs
    its embed. A new module with neither fails here."""
    module = get_method(name)
    generic = method_cases(neural=False) | method_cases(neural=True)
    if name in generic:
        unknown = set(module.TEST_PARAMS) - set(module.PARAMS)
        assert not unknown, f"{name}: TEST_PARAMS names {sorted(unknown)}, not in PARAMS"
        return
    assert name in OWN_TESTS, (
        f"src/scdrbench/methods/{name}.py has no test: declare TEST_PARAMS (short settings for "
        "tests/test_methods_python.py or test_methods_nn.py), or, when its embed needs more than "
        "the matrix, write a test file that runs it and name it in OWN_TESTS"
    )
    path = ROOT / "tests" / OWN_TESTS[name]
    assert _embed_calls(path, name) >= 1, f"{path.name} never runs {name}'s embed"


def test_the_embed_call_finder_finds_each_form(tmp_path):
    path = tmp_path / "test_x.py"
    path.write_text(
        "from scdrbench.methods import get_method\nget_method('pca').embed(X, seed=0)\n"
    )
    assert _embed_calls(path, "pca") == 1 and _embed_calls(path, "tsne") == 0
    path.write_text("m = get_method('tsne')\nm.embed(X, seed=0)\nm.estimate_memory_mb(1, 2)\n")
    assert _embed_calls(path, "tsne") == 1
    path.write_text("from scdrbench.methods import scvis\nscvis.embed(X, seed=0)\n")
    assert _embed_calls(path, "scvis") == 1 and _embed_calls(path, "pca") == 0


#: The ladder's jobs whose method's memory model is fitted to their peaks.
FITTED_JOBS = (
    "tsne",
    "tsne_p350",
    "umap",
    "parametric_umap",
    "pacmap",
    "trimap",
    "phate",
    "phate_lean",
    "densmap_pca",
    "diffmap",
    "spectral_lobpcg",
)


def test_memory_models_bound_the_measured_peaks():
    """The memory model of each job fitted to the ladder's peaks (with its config entry's params
    on 50 PCs; benchmarks/results/measured_peaks.tsv, which the ladder writes) is at or above
    each peak and within 1.3x: the guard, the budget check and the SLURM memory request all rest
    on it. (t-SNE at perplexity 350, k = 1,050: the 300k peak, 19,195 MB, raised the model from
    54 to 56 bytes per neighbour, the calibrated proxy's 100k peak to 60.)"""
    from snakemake.utils import update_config

    from scdrbench.common import peaks

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "benchmarks/ladder.yaml").read_text()))
    validate_config(config)
    measured = peaks.read()
    for job in FITTED_JOBS:
        entry = config["methods"][job]
        module = get_method(entry["algorithm"])
        assert len(measured[job]) >= 4, job
        for n_cells, peak in measured[job].items():
            model = module.estimate_memory_mb(n_cells, 50, **entry["params"])
            assert peak <= model <= 1.3 * peak, (job, n_cells, peak, model)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_params_match_the_embed_signature(name):
    module = get_method(name)
    sig = inspect.signature(module.embed)
    runner = set(RUNNER_ARGS)
    if getattr(module, "NEEDS_OBS_NAMES", False):
        runner.add("obs_names")
    if getattr(module, "NEEDS_PROTEIN", False):
        runner.add("protein")
    kw = {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in runner
    }
    assert set(kw) == set(module.PARAMS), (
        f"{name}: embed() takes {sorted(kw)}, PARAMS declares {sorted(module.PARAMS)}"
    )
    for key, prop in module.PARAMS.items():
        default = kw[key]
        if "default" in prop:
            value = list(default) if isinstance(default, tuple) else default
            assert value == prop["default"], f"{name}.{key}: {default!r} vs {prop['default']!r}"
        else:  # absent means the method's own "auto" rule, or a required parameter
            assert default is None, f"{name}.{key}: PARAMS has no default, embed() has {default!r}"
    for key in getattr(module, "REQUIRED_PARAMS", ()):
        assert key in module.PARAMS and "default" not in module.PARAMS[key], key
    estimate = module.estimate_memory_mb(
        10_000, 50, **{k: p.get("default") for k, p in module.PARAMS.items() if "default" in p}
    )
    assert estimate > 0


def test_schema_has_one_branch_per_module():
    schema = load_schema()
    method = schema["$defs"]["method"]
    assert method["properties"]["algorithm"]["enum"] == list(ALGORITHMS)
    branches = [b["if"]["properties"]["algorithm"]["const"] for b in method["allOf"]]
    assert branches == list(ALGORITHMS)
    for name in ALGORITHMS:
        params = schema["$defs"][f"params_{name}"]
        assert params["additionalProperties"] is False
        assert params["properties"] == get_method(name).PARAMS


def _paper():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_every_configured_algorithm_has_a_module():
    config = validate_config(_paper())
    for mid, entry in config["methods"].items():
        assert entry["algorithm"] in ALGORITHMS, mid
    for path in [ROOT / "profiles" / "demo" / "demo.yaml", ROOT / "benchmarks" / "ladder.yaml"]:
        extra = yaml.safe_load(Path(path).read_text())
        for mid, entry in (extra.get("methods") or {}).items():
            if "algorithm" in entry:
                assert entry["algorithm"] in ALGORITHMS, (path, mid)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"perplexty": 30}, "unknown config key 'methods.tsne.params.perplexty'"),
        ({"perplexity": -1}, "config key 'methods.tsne.params.perplexity': -1 is less than"),
        ({"affinities": "fast"}, "'fast' is not one of opentsne, lean"),
        ({"n_iter": "many"}, "config key 'methods.tsne.params.n_iter': 'many' is not of type"),
    ],
)
def test_parameter_typos_and_ranges_are_config_errors(params, message):
    config = _paper()
    config["methods"]["tsne"]["params"] = params
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert message in str(err.value)
