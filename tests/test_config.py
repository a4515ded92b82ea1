"""Config validation: strict schema, defaults, selections, ids, and the derived grid."""

from __future__ import annotations

import copy

import pytest
import yaml

from scdrbench.common.config import ConfigError, dataset_grid, validate_config
from tests.conftest import ROOT


@pytest.fixture
def config():
    with open(ROOT / "config.yaml") as fh:
        return yaml.safe_load(fh)


def test_default_config_is_valid_and_defaults_filled(config):
    validate_config(config)
    assert config["methods"]["tsne"]["params"]["n_iter"] == 750
    assert config["methods"]["random"]["params"] == {}
    assert config["datasets"]["cbmc"]["subsample"] == []
    assert config["preprocess"]["significant_pcs"]["n_permutations"] == 10


def test_demo_and_test_configs_are_valid(config):
    from snakemake.utils import update_config  # the merge Snakemake applies to --configfile

    for extra in (ROOT / "profiles/demo/demo.yaml", ROOT / "tests/config/test.yaml"):
        merged = copy.deepcopy(config)
        with open(extra) as fh:
            update_config(merged, yaml.safe_load(fh))
        validate_config(merged)


def test_unknown_top_level_key(config):
    config["sed"] = 1
    with pytest.raises(ConfigError, match=r"unknown config key 'sed'"):
        validate_config(config)


def test_unknown_nested_key_names_the_path(config):
    config["datasets"]["cbmc"]["labelz"] = {"from": "leiden"}
    with pytest.raises(ConfigError, match=r"datasets\.cbmc\.labelz"):
        validate_config(config)


def test_unknown_method_param_rejected(config):
    config["methods"]["tsne"]["params"]["perplexityy"] = 5
    with pytest.raises(ConfigError, match=r"methods\.tsne\.params\.perplexityy"):
        validate_config(config)


def test_tsne_k_neighbors_is_auto_or_a_count(config):
    validate_config(copy.deepcopy(config))
    assert config["methods"]["tsne"]["params"].get("k_neighbors", "auto") == "auto"
    config["methods"]["tsne_p350"]["params"]["k_neighbors"] = 500
    validate_config(copy.deepcopy(config))
    config["methods"]["tsne_p350"]["params"]["k_neighbors"] = "many"
    with pytest.raises(ConfigError, match=r"methods\.tsne_p350\.params\.k_neighbors"):
        validate_config(config)


def test_unknown_method_in_selection(config):
    config["selection"]["methods"] = ["pca", "tnse"]
    with pytest.raises(ConfigError, match=r"selection\.methods\[1\].*'tnse'.*known ids"):
        validate_config(config)


def test_selection_all_is_every_method_not_paper_only_in_registry_order(config):
    config["selection"]["methods"] = "all"
    config["methods"]["umap"]["paper_only"] = True
    validate_config(config)
    paper_only = {m for m, e in config["methods"].items() if e.get("paper_only")}
    assert {"tsne_p350", "umap"} <= paper_only
    expected = [m for m in config["methods"] if m not in paper_only]
    assert config["selection"]["methods"] == expected
    assert "densmap" in expected and expected[0] == "random"


@pytest.mark.parametrize(
    "value, message",
    [
        (
            "alll",
            "config key 'selection.methods': 'alll' is neither a list of method ids nor 'all'",
        ),
        (["pca", "p.ca"], "config key 'selection.methods.1': id 'p.ca' is not allowed"),
        ([], "config key 'selection.methods': [] should be non-empty"),
    ],
)
def test_selection_methods_is_a_list_of_ids_or_all(config, value, message):
    config["selection"]["methods"] = value
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert str(err.value).startswith(message)


def test_selection_all_with_every_method_paper_only(config):
    config["selection"]["methods"] = "all"
    for entry in config["methods"].values():
        entry["paper_only"] = True
    with pytest.raises(ConfigError, match=r"'selection\.methods': all, and every method is marked"):
        validate_config(config)


def test_paper_only_changes_no_digest(config):
    """Marking a method paper_only re-runs none of its finished jobs."""
    from scdrbench.common.config import digest

    validate_config(config)
    entry = dict(config["methods"]["tsne_p350"])
    assert entry["paper_only"] is True
    assert digest(entry, "method") == digest(dict(entry, paper_only=False), "method")


def test_unknown_dataset_in_selection(config):
    config["selection"]["datasets"] = ["pbmc"]
    with pytest.raises(ConfigError, match=r"unknown dataset id 'pbmc'"):
        validate_config(config)


@pytest.mark.parametrize("bad_id", ["my.data", "a/b", "Mixed", "with-dash"])
def test_dataset_id_with_dot_or_slash(config, bad_id):
    config["datasets"][bad_id] = copy.deepcopy(config["datasets"]["pbmc68k"])
    with pytest.raises(ConfigError, match=r"only lower-case letters, digits and underscores"):
        validate_config(config)


def test_download_source_needs_url_or_path(config):
    del config["datasets"]["cbmc"]["url"]
    with pytest.raises(ConfigError, match=r"'url'.*'path'"):
        validate_config(config)


def test_enum_rejected(config):
    config["methods"]["umap"]["family"] = "gpu"
    with pytest.raises(ConfigError, match=r"methods\.umap\.family.*not one of"):
        validate_config(config)


def test_bounds(config):
    config["repeats"] = 0
    with pytest.raises(ConfigError, match=r"'repeats'"):
        validate_config(config)


def test_widths_must_narrow(config):
    config["methods"]["ae_keras"]["params"] = {"hidden_layers": [10, 12, 5]}
    with pytest.raises(ConfigError, match=r"hidden_layers.*does not narrow"):
        validate_config(config)


def test_subsample_variants_join_the_grid(config):
    config["datasets"]["mouse_brain_1m"]["subsample"] = [10000, 100000]
    validate_config(config)
    grid = dataset_grid(config)
    assert list(grid) == [
        "cbmc",
        "mouse_brain_1m",
        "mouse_brain_1m_n10000",
        "mouse_brain_1m_n100000",
    ]
    assert grid["mouse_brain_1m_n10000"]["parent"] == "mouse_brain_1m"
    assert grid["mouse_brain_1m_n10000"]["n_cells"] == 10000


def test_selection_all_keeps_config_yamls_order_whatever_the_merge_did(config):
    """Snakemake's merge of config files can move overridden methods to the front; `all` still
    lists config.yaml's order (the order of every table and figure), then methods only a user
    file adds."""
    config["selection"]["methods"] = "all"
    ids = list(config["methods"])
    moved = ["scvis", "parametric_umap"]
    config["methods"] = {m: config["methods"][m] for m in [*moved, *ids] if m in ids}
    config["methods"]["mine"] = dict(config["methods"]["pca"])
    validate_config(config)
    chosen = config["selection"]["methods"]
    assert chosen[:4] == ["random", "true_features", "spectral", "pca"]
    assert chosen.index("scvis") < chosen.index("parametric_umap") < chosen.index("mine")
    assert chosen[-1] == "mine"
