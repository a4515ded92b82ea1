"""Validate the workflow configuration and derive the dataset x method grid.

Used by ``rules/common.smk`` (the only place the workflow reads the raw config) and by the tests.
Errors name the config key and the fix in one line.

Longer than 400 lines on purpose: the schema's completion from the method modules, the
validation passes and the grid they feed read as one contract; a split would scatter it.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from scdrbench.common.errors import ConfigError
from scdrbench.common.paths import SCHEMA_PATH, WORKFLOW_ROOT

__all__ = ["ConfigError", "dataset_grid", "load_schema", "predicted_overruns", "validate_config"]

SUBSAMPLE_SEP = "_n"


def _with_defaults(validator_class):
    """A validator that fills in ``default`` values before validating (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(Draft202012Validator)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """Read the YAML JSON-schema and add each method module's parameter declaration.

    ``$defs/method``'s ``algorithm`` enum lists the modules of ``src/scdrbench/methods``, and its
    ``allOf`` gets one branch per algorithm checking ``params`` against ``$defs/params_<name>``,
    made from the module's ``PARAMS`` (strict: no unknown parameter).
    """
    from scdrbench.methods import ALGORITHMS, get_method

    with open(path) as fh:
        schema = yaml.safe_load(fh)
    method = schema["$defs"]["method"]
    method["properties"]["algorithm"] = {
        "enum": list(ALGORITHMS),
        "description": "the module src/scdrbench/methods/<algorithm>.py",
    }
    branches = []
    for name in ALGORITHMS:
        module = get_method(name)
        schema["$defs"][f"params_{name}"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": copy.deepcopy(module.PARAMS),
            "required": list(getattr(module, "REQUIRED_PARAMS", ())),
        }
        branches.append(
            {
                "if": {"properties": {"algorithm": {"const": name}}},
                "then": {"properties": {"params": {"$ref": f"#/$defs/params_{name}"}}},
            }
        )
    method["allOf"] = branches
    return schema


#: Old stage names -> the stage's one name (rules, logs, benchmarks, threads and budget keys).
RENAMED_STAGES = {"metrics": "score"}
#: The config sections keyed by stage.
STAGE_KEYED = {("threads",), ("budget", "stages")}


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _one_line(message: str) -> str:
    """Control characters (a key with a newline in it) escaped: the message stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)


def _describe(error) -> str:
    """One line: the key, what is wrong, the fix."""
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        old = [e for e in extra if e in RENAMED_STAGES]
        if old and tuple(error.absolute_path) in STAGE_KEYED:
            new = RENAMED_STAGES[old[0]]
            return (
                f"config key '{where}{old[0]}': the stage is called '{new}' now; "
                f"rename the key to '{where}{new}'"
            )
        hint = f"allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown config key '{where}{extra[0]}': remove it or fix its spelling ({hint})"
    if error.validator == "pattern" and error.schema.get("pattern") == "^[a-z0-9_]+$":
        return (
            f"config key '{key}': id {error.instance!r} is not allowed: ids may contain only "
            "lower-case letters, digits and underscores (no dots, slashes or dashes); rename it"
        )
    if error.validator == "propertyNames":
        bad = error.instance if isinstance(error.instance, str) else error.message
        return (
            f"config key '{key}': id {bad!r} is not allowed: ids may contain only lower-case "
            "letters, digits and underscores (no dots, slashes or dashes); rename it"
        )
    if error.validator == "enum":
        return (
            f"config key '{key}': {error.instance!r} is not one of "
            f"{', '.join(map(str, error.validator_value))}"
        )
    if error.validator == "required":
        return f"config key '{key}': {error.message}; add it"
    if error.validator == "oneOf" and list(error.absolute_path) == ["selection", "methods"]:
        listed = [e for e in error.context if e.relative_schema_path[0] == 0]
        if isinstance(error.instance, list) and listed:  # a list: what is wrong in it
            return _describe(max(listed, key=lambda e: len(e.absolute_path)))
        return (
            f"config key '{key}': {error.instance!r} is neither a list of method ids nor 'all'; "
            "give [id, ...] or all (every method not marked paper_only)"
        )
    if error.validator == "anyOf" and error.absolute_path and error.absolute_path[0] == "datasets":
        return f"config key '{key}': give either 'url' (downloaded) or 'path' (a local copy)"
    return f"config key '{key}': {error.message}"


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate ``config`` in place against the schema, filling in defaults.

    Raises
    ------
    ConfigError
        For the first (deepest, most specific) problem, naming the key.
    """
    schema = schema if schema is not None else load_schema()
    validator = _DefaultFillingValidator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (-len(e.absolute_path), e.path))
    if errors:
        best = errors[0]
        # propertyNames errors carry the offending name in their context
        if best.validator == "propertyNames" and best.context:
            inner = best.context[0]
            raise ConfigError(
                f"config key '{_key(best.absolute_path)}': id {inner.instance!r} is not allowed: "
                "ids may contain only lower-case letters, digits and underscores "
                "(no dots, slashes or dashes); rename it"
            )
        raise ConfigError(_one_line(_describe(best)))
    expand_selection(config)
    check_selection(config)
    check_method_params(config)
    check_method_families(config)
    from scdrbench.common.budget import check_budgets

    check_budgets(config)
    check_subsamples(config)
    check_protein(config)
    return config


def has_protein(entry: dict) -> bool:
    """Whether a data set entry brings protein (ADT) counts."""
    synthetic = entry.get("synthetic") or {}
    return (
        entry["source"] == "geo_citeseq"
        or any(k in entry for k in ("adt_path", "adt_url", "adt_obsm"))
        or bool(entry.get("adt_capture"))
        or (entry["source"] == "synthetic" and synthetic.get("n_antibodies", 0) >= 2)
    )


def needs_protein(entry: dict) -> bool:
    """Whether a method entry needs protein counts (its module sets ``NEEDS_PROTEIN``)."""
    from scdrbench.methods import get_method

    return bool(getattr(get_method(entry["algorithm"]), "NEEDS_PROTEIN", False))


def check_protein(config: dict) -> None:
    """Protein labels and protein methods need data sets with protein counts."""
    for ds, entry in config["datasets"].items():
        n_ab = (entry.get("synthetic") or {}).get("n_antibodies", 0)
        if entry["source"] == "synthetic" and n_ab == 1:
            raise ConfigError(
                f"config key 'datasets.{ds}.synthetic.n_antibodies': 1; give 0 (RNA only) or at "
                "least 2 antibodies"
            )
    selected = config["selection"]["datasets"]
    for ds in selected:
        entry = config["datasets"][ds]
        if entry["labels"]["from"] == "adt_clusters" and not has_protein(entry):
            raise ConfigError(
                f"config key 'datasets.{ds}.labels': from adt_clusters needs protein counts; "
                "give adt_path, adt_url, adt_obsm (h5ad) or adt_capture: true (10x HDF5)"
            )
    with_protein = [d for d in selected if has_protein(config["datasets"][d])]
    for i, m in enumerate(config["selection"]["methods"]):
        if needs_protein(config["methods"][m]) and not with_protein:
            raise ConfigError(
                f"config key 'selection.methods[{i}]': {m} needs protein (ADT) counts and none "
                f"of the selected data sets ({', '.join(selected)}) has them; select a CITE-seq "
                "data set (adt_path, adt_url, adt_obsm or adt_capture) or remove it"
            )


def grid_pairs(config: dict, grid: dict[str, dict]) -> list[tuple[str, str]]:
    """Every (data set, method) job: a method that needs protein counts only where there are."""
    return [
        (ds, m)
        for ds, entry in grid.items()
        for m in config["selection"]["methods"]
        if has_protein(entry) or not needs_protein(config["methods"][m])
    ]


def check_subsamples(config: dict) -> None:
    """Every scaling-ladder rung must be smaller than its data set."""
    for ds in config["selection"]["datasets"]:
        entry = config["datasets"][ds]
        for i, size in enumerate(entry.get("subsample", [])):
            if size >= entry["n_cells"]:
                raise ConfigError(
                    f"config key 'datasets.{ds}.subsample[{i}]': {size:,} cells is not smaller "
                    f"than the data set (n_cells {entry['n_cells']:,}); remove that rung or "
                    "correct n_cells"
                )


#: Width of each method input, by the preprocess key that sets it.
INPUT_DIMS = {"pca": "n_pcs", "significant_pcs": "n_pcs", "hvg": "n_hvg"}


def predicted_overruns(config: dict, grid: dict[str, dict]) -> list[tuple[str, str, str]]:
    """Embedding jobs whose method's memory model exceeds their memory budget.

    Returns ``(dataset, method, message)``; with ``budget.over_estimate: error`` the first is
    raised as a :class:`ConfigError` naming the budget key (before any job starts), with
    ``skip`` they are returned and recorded as skipped by their jobs.
    """
    from scdrbench.common.budget import format_size, job_budget
    from scdrbench.methods import get_method

    found = []
    for method in config["selection"]["methods"]:
        entry = config["methods"][method]
        budget = job_budget(config, "embed", method)
        if budget.mem_mb is None:
            continue
        impl = get_method(entry["algorithm"])
        dims = config["preprocess"][INPUT_DIMS[entry["input"]]]
        for ds, ds_entry in grid.items():
            n = ds_entry["n_cells"]
            need = impl.estimate_memory_mb(n, dims, **entry["params"])
            if need <= budget.mem_mb:
                continue
            message = (
                f"{method} on {ds} ({n:,} cells) needs about {format_size(need)} by its memory "
                f"model (src/scdrbench/methods/{entry['algorithm']}.py), more than its budget "
                f"{format_size(budget.mem_mb)}"
            )
            if config["budget"].get("over_estimate", "error") == "error":
                raise ConfigError(
                    f"config key '{budget.mem_key}': {message}; raise the budget, lower the "
                    f"method's memory (its params), drop {method} from selection.methods, or set "
                    "budget.over_estimate: skip to record such jobs as skipped"
                )
            found.append((ds, method, message))
    return found


@functools.cache
def _registry_order() -> list[str]:
    """The method ids in the order config.yaml lists them."""
    with open(WORKFLOW_ROOT / "config.yaml") as fh:
        return list((yaml.safe_load(fh) or {}).get("methods", {}))


def expand_selection(config: dict) -> None:
    """``selection.methods: all`` becomes the list of every registry method not marked
    ``paper_only``, in the order of config.yaml's registry, then methods only your files add
    (the demo's selection: a new method is in it without being listed). The merged config's
    own key order is not used: Snakemake's merge of config files does not keep it, and the
    order is that of every table and figure."""
    if config["selection"]["methods"] == "all":
        order = {m: i for i, m in enumerate(_registry_order())}
        ids = sorted(config["methods"], key=lambda m: order.get(m, len(order)))
        chosen = [m for m in ids if not config["methods"][m]["paper_only"]]
        if not chosen:
            raise ConfigError(
                "config key 'selection.methods': all, and every method is marked paper_only; "
                "list the methods to run"
            )
        config["selection"]["methods"] = chosen


def check_selection(config: dict) -> None:
    """Every selected id must exist in its registry; stability runs on selected data sets; no
    data set id looks like a subsample variant."""
    import re

    for ds in config["datasets"]:
        if re.search(r"_n[0-9]+$", ds):
            raise ConfigError(
                f"config key 'datasets.{ds}': ids ending in _n<digits> name the subsample "
                "variants of a data set (its `subsample` sizes); rename it"
            )
    for kind in ("datasets", "methods"):
        known = config[kind]
        for i, item in enumerate(config["selection"][kind]):
            if item not in known:
                raise ConfigError(
                    f"config key 'selection.{kind}[{i}]': unknown {kind[:-1]} id {item!r}; "
                    f"known ids: {', '.join(sorted(known))} (or add an entry under '{kind}')"
                )
    grid = set(dataset_grid(config))
    for i, ds in enumerate(config.get("stability", {}).get("datasets", [])):
        if ds not in grid:
            raise ConfigError(
                f"config key 'stability.datasets[{i}]': {ds!r} is not a selected data set; "
                f"selected: {', '.join(sorted(grid))}"
            )


def check_method_params(config: dict) -> None:
    """Checks a JSON schema cannot express: hidden layer widths must narrow to the bottleneck
    (the lists a method module names in ``NARROWING_LAYERS``)."""
    from scdrbench.methods import get_method

    for mid, entry in config["methods"].items():
        params = entry["params"]
        narrowing = getattr(get_method(entry["algorithm"]), "NARROWING_LAYERS", ())
        for key in narrowing:
            widths = params.get(key)
            if not widths:
                continue
            bottleneck = params.get("bottleneck", 2)
            if any(b >= a for a, b in zip(widths, widths[1:])) or widths[-1] <= bottleneck:
                raise ConfigError(
                    f"config key 'methods.{mid}.params.{key}': {widths} does not narrow; "
                    f"give strictly decreasing widths, all larger than the bottleneck ({bottleneck})"
                )


def check_method_families(config: dict) -> None:
    """Every method's family can import its backend: its environment file lists the backend's
    distribution (``src/scdrbench/common/environments.py``)."""
    from scdrbench.common.environments import family_error

    for mid, entry in config["methods"].items():
        if message := family_error(f"methods.{mid}", entry):
            raise ConfigError(message)


def url_filename(url: str) -> str:
    """The file name an address ends in (``.../GSE100866_..._umi.csv.gz`` -> the last part)."""
    from urllib.parse import urlparse

    return Path(urlparse(url).path).name


def dataset_grid(config: dict) -> dict[str, dict]:
    """Selected datasets plus their subsample variants: ``{id: entry}``.

    A subsample variant ``{id}_n{size}`` gets the parent's entry with ``parent`` and
    ``n_cells`` set.
    """
    grid: dict[str, dict] = {}
    for ds in config["selection"]["datasets"]:
        entry = config["datasets"][ds]
        grid[ds] = entry
        for size in entry.get("subsample", []):
            child = dict(entry, parent=ds, n_cells=size, subsample=[])
            grid[f"{ds}{SUBSAMPLE_SEP}{size}"] = child
    return grid


#: Keys of a registry entry that describe or size a job without changing what it computes: a
#: change of them re-runs nothing (the summary picks up a new label).
NON_SEMANTIC = {
    "dataset": ("description", "n_cells", "subsample"),
    "method": ("label", "reference", "control", "family", "paper_only"),
}


@functools.cache
def _schema_defaults_cached(kind: str) -> str:
    import json

    props = load_schema()["$defs"][kind]["properties"]
    return json.dumps({k: v["default"] for k, v in props.items() if "default" in v})


def _schema_defaults(kind: str) -> dict:
    import json

    return json.loads(_schema_defaults_cached(kind))


def semantic_labels(labels: dict) -> dict:
    """A dataset's ``labels`` entry as its digest sees it: a key at its default is left out,
    except ``resolution`` (in the digest since the first release: leaving it out now would re-run
    every data set once)."""
    defaults = _schema_defaults("labels")
    return {k: v for k, v in labels.items() if k == "resolution" or defaults.get(k, object()) != v}


def digest(entry: dict, kind: str) -> str:
    """What a job of this entry computes, as a stable JSON string (a Snakemake param).

    Non-semantic keys (:data:`NON_SEMANTIC`) are left out, and so is every key, or method
    parameter, still at its default: a release that adds an optional setting with a default does
    not re-run finished jobs. For a subsample variant (``parent`` set) ``n_cells`` is its size
    and stays in.
    """
    import json

    defaults = _schema_defaults(kind)
    drop = set(NON_SEMANTIC[kind])
    if kind == "dataset" and "parent" in entry:
        drop.discard("n_cells")
    out = {k: v for k, v in entry.items() if k not in drop and defaults.get(k, object()) != v}
    if kind == "dataset" and isinstance(out.get("labels"), dict):
        out["labels"] = semantic_labels(out["labels"])
    if kind == "method" and "params" in out:
        from scdrbench.methods import get_method

        declared = get_method(entry["algorithm"]).PARAMS
        out["params"] = {
            k: v for k, v in out["params"].items() if declared.get(k, {}).get("default") != v
        }
    return json.dumps(out, sort_keys=True)
