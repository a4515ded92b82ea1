"""Every method module is its method's one declaration, and every registry agrees with it.

Fails when a module loses a declaration (PARAMS, BACKEND_MODULES, VERSIONED, embed,
estimate_memory_mb), when PARAMS and the embed signature disagree (a name or a default), when a
backend or distribution cannot be found, or when the config names an algorithm with no module.
"""

from __future__ import annotations

import importlib.util
import inspect
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from scdrbench.common.config import ConfigError, load_schema, validate_config
from scdrbench.methods import ALGORITHMS, get_method
from tests.conftest import ROOT

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


def test_memory_models_bound_the_measured_peaks():
    """Every method that records the peaks its jobs reached (MEASURED_PEAK_MB: cells -> MB, with
    its registry defaults on 50 PCs, from benchmarks/results/ladder.tsv) has a memory model at
    or above each and within 1.3x: the guard, the budget check and the SLURM memory request
    all rest on it."""
    checked = []
    for name in ALGORITHMS:
        module = get_method(name)
        for n_cells, peak in getattr(module, "MEASURED_PEAK_MB", {}).items():
            model = module.estimate_memory_mb(n_cells, 50)
            assert peak <= model <= 1.3 * peak, (name, n_cells, peak, model)
            checked.append(name)
    assert {"tsne", "umap", "parametric_umap"} <= set(checked)


def test_tsne_memory_model_bounds_the_perplexity_350_peaks():
    """t-SNE at perplexity 350 with openTSNE's k = 1,050: the same bound for the ladder's peaks
    (the 300k one, 19,195 MB, raised the model from 54 to 56 bytes per neighbour)."""
    tsne = get_method("tsne")
    for n_cells, peak in tsne.MEASURED_PEAK_MB_P350.items():
        model = tsne.estimate_memory_mb(n_cells, 50, perplexity=350)
        assert peak <= model <= 1.3 * peak, (n_cells, peak, model)


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
