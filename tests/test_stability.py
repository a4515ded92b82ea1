"""Stability under seeds and subsamples: agreements, the deterministic control, the stage."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from scripts.common.config import ConfigError, validate_config
from scripts.common.errors import ScdrbenchError
from scripts.stability import align, knn_jaccard, procrustes_disparity, runs_plan
from tests.conftest import ROOT


def test_agreements_know_the_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 2))
    theta = 0.7
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    b = 3.0 * a @ rot + 5.0  # the same picture, rotated, scaled, moved
    assert procrustes_disparity(a, b) == pytest.approx(0.0, abs=1e-12)
    assert knn_jaccard(a, b, k=10) == pytest.approx(1.0)
    np.testing.assert_allclose(align(a, b), a, atol=1e-9)
    c = rng.normal(size=(200, 2))  # another picture
    assert procrustes_disparity(a, c) > 0.8
    assert knn_jaccard(a, c, k=10) < 0.1


def test_runs_plan_and_its_bad_input():
    plan = runs_plan(100, seed=5, seeds=3, subsamples=2, fraction=0.8)
    assert [(name, kind, s) for name, kind, s, _ in plan] == [
        ("seed5", "seed", 5),
        ("seed6", "seed", 6),
        ("seed7", "seed", 7),
        ("sub1", "subsample", 5),
        ("sub2", "subsample", 5),
    ]
    assert all(len(c) == 100 for _, k, _, c in plan if k == "seed")
    subs = [c for _, k, _, c in plan if k == "subsample"]
    assert all(len(c) == 80 for c in subs) and not np.array_equal(subs[0], subs[1])
    again = runs_plan(100, seed=5, seeds=3, subsamples=2, fraction=0.8)
    assert all(np.array_equal(x[3], y[3]) for x, y in zip(plan, again))  # fixed seeds
    with pytest.raises(ScdrbenchError, match="'stability.fraction': 1.5 is outside"):
        runs_plan(100, seed=0, seeds=1, subsamples=1, fraction=1.5)
    with pytest.raises(ScdrbenchError, match="'stability.seeds': 0"):
        runs_plan(100, seed=0, seeds=0, subsamples=1, fraction=0.5)


@pytest.mark.parametrize(
    "stability, key",
    [
        ({"datasets": ["pbmc68k"], "fraction": 0}, "stability.fraction"),
        ({"datasets": ["pbmc68k"], "fraction": 1.2}, "stability.fraction"),
        ({"datasets": ["pbmc68k"], "seeds": 0}, "stability.seeds"),
        ({"datasets": ["nosuch"]}, "stability.datasets[0]"),
        ({"datasets": ["pbmc68k"], "sedes": 3}, "stability.sedes"),
    ],
)
def test_bad_stability_config_names_the_key(stability, key):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["selection"]["datasets"] = ["pbmc68k"]
    config["stability"] = stability
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert key in str(err.value)


@pytest.mark.workflow
@pytest.mark.slow
def test_stability_stage_pca_has_zero_seed_spread(tmp_path):
    from tests.test_workflow import run_snakemake

    for name in ("Snakefile", "config.yaml", "rules", "scripts"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    config = ROOT / "tests" / "config" / "stability.yaml"
    run_snakemake(
        "--configfile",
        str(config),
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        "results/tables/stability.tsv",
        "results/figures/stability.png",
    )
    table = pd.read_csv(tmp_path / "results/tables/stability.tsv", sep="\t")
    stat = table.set_index(["method", "kind", "metric"])
    # PCA is deterministic: every seed gives the same picture and the same scores
    assert stat.loc[("pca", "seed", "procrustes"), "mean"] == pytest.approx(0.0, abs=1e-9)
    assert stat.loc[("pca", "seed", "jaccard"), "mean"] == pytest.approx(1.0)
    assert stat.loc[("pca", "seed", "knn_accuracy"), "sd"] == pytest.approx(0.0, abs=1e-12)
    # t-SNE and UMAP move with the seed, and their spread is reported as a number
    for method in ("tsne", "umap"):
        assert stat.loc[(method, "seed", "procrustes"), "mean"] > 1e-4
        assert np.isfinite(stat.loc[(method, "seed", "knn_accuracy"), "sd"])
        assert stat.loc[(method, "subsample", "jaccard"), "n"] == 1  # two subsamples: one pair
    md = (tmp_path / "results/tables/stability.md").read_text()
    assert "## synthetic_tiny" in md and "0.000 +- 0.000" in md
    assert (tmp_path / "results/figures/stability.png").stat().st_size > 5000
