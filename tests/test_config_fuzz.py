"""Random config mutations: each one validates or stops with a ConfigError naming a key, never
another exception (a traceback from inside a library)."""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scdrbench.common.config import ConfigError, validate_config
from tests.conftest import ROOT

BASE = yaml.safe_load((ROOT / "config.yaml").read_text())
BASE["selection"] = {
    "datasets": ["pbmc68k", "synthetic_citeseq"],
    "methods": ["pca", "tsne", "umap"],
}


def _paths(node, prefix=()):
    """Every path into the config (mapping keys and list positions)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


PATHS = [p for p in _paths(BASE) if p]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)


def _get(node, path):
    for p in path:
        node = node[p]
    return node


@st.composite
def mutations(draw):
    config = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        try:
            parent = _get(config, path[:-1])
        except (KeyError, IndexError, TypeError):
            continue
        kind = draw(st.sampled_from(["replace", "delete", "extra"]))
        key = path[-1]
        if kind == "replace" and isinstance(parent, (dict, list)):
            try:
                parent[key] = draw(VALUES)
            except IndexError:
                pass
        elif kind == "delete" and isinstance(parent, dict):
            parent.pop(key, None)
        elif kind == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    return config


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_a_mutated_config_validates_or_names_a_key(config):
    try:
        validate_config(config)
    except ConfigError as err:
        message = str(err)
        assert "config key '" in message, (
            message
        )  # "config key 'x': ..." or "unknown config key 'x'"
        assert "\n" not in message
