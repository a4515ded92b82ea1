"""Stability under seeds and subsamples: agreements, the deterministic control, the stage."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from scdrbench.common.config import ConfigError, validate_config
from scdrbench.common.errors import ScdrbenchError
from scdrbench.stages.stability import align, knn_jaccard, procrustes_disparity, runs_plan
from scdrbench.summary import figures
from scdrbench.summary.stability import draw_stability, stability_markdown, stability_table
from tests.conftest import ROOT
from tests.test_embed_summary import assert_panels_draw_points


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


def _stability_tsv(path, method, seeds: int, *, knn=0.9):
    """A stability job's tidy file: ``seeds`` seed runs and their pairs (values made up)."""
    rows = []
    names = [f"seed{i}" for i in range(seeds)]
    for i, name in enumerate(names):
        rows.append(("seed", name, "knn_accuracy", knn + 0.01 * i))
    for i, pair in enumerate(f"{a}~{b}" for j, a in enumerate(names) for b in names[j + 1 :]):
        rows.append(("seed", pair, "procrustes", 0.5 + 0.02 * i))
        rows.append(("seed", pair, "jaccard", 0.4 + 0.01 * i))
    df = pd.DataFrame(rows, columns=["kind", "run", "metric", "value"])
    df.insert(0, "method", method)
    df.insert(0, "dataset", "d1")
    df.to_csv(path, sep="\t", index=False)
    return str(path)


def test_a_single_pair_has_no_spread_and_counts_are_shown(tmp_path):
    """Two seeds: one pair, whose spread is not available (never 0.000); three seeds: three
    pairs and a spread; the runs and pairs stand beside the means."""
    files = [
        _stability_tsv(tmp_path / "tsne.tsv", "tsne", 2),
        _stability_tsv(tmp_path / "umap.tsv", "umap", 3),
    ]
    table = stability_table(files).set_index(["method", "metric"])
    assert table.loc[("tsne", "procrustes"), "n"] == 1
    assert np.isnan(table.loc[("tsne", "procrustes"), "sd"])
    assert table.loc[("tsne", "knn_accuracy"), "sd"] == pytest.approx(np.std([0.9, 0.91], ddof=1))
    assert table.loc[("umap", "procrustes"), "n"] == 3
    assert table.loc[("umap", "procrustes"), "sd"] == pytest.approx(0.02)
    md = stability_markdown(stability_table(files))
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    cells = [c.strip() for c in rows["tsne"].split("|")[1:-1]]
    assert cells[:5] == ["tsne", "seed", "2", "1", "0.500 +- n/a"]
    assert cells[5] == "0.400 +- n/a" and cells[6] == "0.905 +- 0.007"
    cells = [c.strip() for c in rows["umap"].split("|")[1:-1]]
    assert cells[:5] == ["umap", "seed", "3", "3", "0.520 +- 0.020"]
    assert "+- 0.000" not in md


def _stability_h5ad(path, label, xy=None, message=None):
    """A stability job's figure file: two aligned seed runs, or a status and no runs."""
    import anndata as ad

    n = 60 if xy is None else len(xy)
    obsm = {}
    if xy is not None:
        obsm = {"run_seed0": xy, "run_seed1": xy + 0.1, "run_sub1": np.full_like(xy, np.nan)}
    a = ad.AnnData(obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]), obsm=obsm)
    a.uns.update(
        method_label=label, status="error" if message else "ok", status_message=message or "ok"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    a.write_h5ad(path)
    return str(path)


def test_stability_figure_has_the_comparison_layout_and_draws_every_run(tmp_path):
    rng = np.random.default_rng(0)
    methods = [f"m{i:02d}" for i in range(18)]
    paths, points = [], {}
    for m in methods:
        if m == "m07":
            paths.append(_stability_h5ad(tmp_path / "d1" / f"{m}.h5ad", m, message="error: boom"))
            continue
        xy = rng.normal(size=(60, 2)).astype(np.float32)
        paths.append(_stability_h5ad(tmp_path / "d1" / f"{m}.h5ad", f"Method {m}", xy))
        points[f"d1/{m}"] = 2 * 60  # the two seed runs, not the subsample
    fig = draw_stability(paths)
    png = tmp_path / "stability.png"
    assert_panels_draw_points(fig, points, png, failed={"d1/m07": "error: boom"})
    assert fig.get_figwidth() * figures.FIGURE_DPI <= 2400
    lefts = {round(ax.get_position().x0, 3) for ax in fig.axes if ax.get_gid()}
    assert len(lefts) == figures.MAX_COLUMNS
    assert [sf.get_suptitle() for sf in fig.subfigs] == ["d1"]


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
    # two seeds make one pair: its spread is not available, never 0
    assert np.isnan(stat.loc[("pca", "seed", "procrustes"), "sd"])
    md = (tmp_path / "results/tables/stability.md").read_text()
    assert "## synthetic_tiny" in md
    rows = [
        [c.strip() for c in line.split("|")[1:-1]]
        for line in md.splitlines()
        if line.startswith("| ") and ("| seed " in line or "| subsample " in line)
    ]
    assert len(rows) == 6  # 3 methods x (seed, subsample)
    for method, kind, runs, pairs, procrustes, jaccard, *_ in rows:
        assert (runs, pairs) == ("2", "1"), (method, kind)
        assert procrustes.endswith(" +- n/a") and jaccard.endswith(" +- n/a"), (method, kind)
    assert ["pca", "seed", "2", "1", "0.000 +- n/a", "1.000 +- n/a"] in [r[:6] for r in rows]
    assert (tmp_path / "results/figures/stability.png").stat().st_size > 5000
