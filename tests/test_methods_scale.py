"""The settings for 1.3M cells (issue 23): tsne_exag, spectral_lobpcg, phate_lean, densmap_pca,
as the registry declares them, and the memory models of the newer methods against measured
peaks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy.stats import spearmanr

from scdrbench.methods import get_method
from tests.conftest import ROOT, knn_accuracy

REGISTRY = yaml.safe_load((ROOT / "config.yaml").read_text())["methods"]
#: each variant's registry params, shortened (iterations) or scaled to ~200 cells where needed
FAST = {
    "tsne_exag": {"n_iter": 250, "early_exaggeration_iter": 100},
    "spectral_lobpcg": {},
    # 1,000 landmarks would be more than the test's cells (PHATE then uses none): 50
    "phate_lean": {"n_landmark": 50},
    "densmap_pca": {"n_epochs": 100},
}


def _params(name: str) -> tuple[object, dict]:
    entry = REGISTRY[name]
    return get_method(entry["algorithm"]), {**entry.get("params", {}), **FAST[name]}


def test_the_variants_are_in_the_registry_and_the_ladder():
    ladder = yaml.safe_load((ROOT / "benchmarks" / "ladder.yaml").read_text())
    for name in FAST:
        assert REGISTRY[name]["label"] and REGISTRY[name]["reference"], name
        assert name in ladder["selection"]["methods"], name
    assert REGISTRY["tsne_exag"]["params"] == {"perplexity": 30, "exaggeration": 4}
    assert REGISTRY["spectral_lobpcg"]["params"] == {
        "eigen_solver": "lobpcg",
        "neighbors": "nndescent",
    }
    assert REGISTRY["phate_lean"]["params"] == {"n_landmark": 1000, "neighbors": "nndescent"}
    assert REGISTRY["densmap_pca"]["params"] == {"densmap": True, "init": "pca"}


def test_the_ladder_runs_every_paper_method_with_protein_for_ae_citeseq():
    """All 18 methods of config.yaml's paper selection are on the ladder (issue 23), in its
    order, and the proxy has its simulated antibodies, so ae_citeseq is not a config error."""
    from scdrbench.stages.check_config import check

    paper = yaml.safe_load((ROOT / "config.yaml").read_text())["selection"]["methods"]
    config = check([str(ROOT / "benchmarks" / "ladder.yaml")])
    on_ladder = config["selection"]["methods"]
    assert len(paper) == 18 and [m for m in on_ladder if m in paper] == paper
    assert config["datasets"]["proxy_1m"]["adt_path"] == "scratch/proxy_1m_adt.h5ad"


@pytest.mark.parametrize("name", list(FAST))
def test_variant_shape_finite_seeded_and_separating(name, blobs):
    X, y = blobs
    module, params = _params(name)
    a = module.embed(X, seed=3, **params)
    b = module.embed(X, seed=3, **params)
    assert a.shape == (X.shape[0], 2)
    assert a.dtype == np.float32
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert knn_accuracy(a, y) >= 0.9


def _spread_ratio(emb, y) -> float:
    """Mean distance of cells to their cluster's centre over the mean distance between centres."""
    centres = np.array([emb[y == c].mean(axis=0) for c in np.unique(y)])
    within = np.mean(
        [
            np.linalg.norm(emb[y == c] - centres[i], axis=1).mean()
            for i, c in enumerate(np.unique(y))
        ]
    )
    between = np.mean(
        [np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1 :]]
    )
    return within / between


def test_exaggeration_packs_clusters_tighter_than_plain_tsne(blobs):
    """Exaggeration 4 pulls each cluster together relative to the gaps between them (Kobak &
    Berens 2019, Fig. 5), with the same kNN graph; the run records the factor."""
    X, y = blobs
    module, params = _params("tsne_exag")
    info: dict = {}
    exag = module.embed(X, seed=0, info=info, **params)
    plain = module.embed(X, seed=0, **{**params, "exaggeration": None})
    assert info["exaggeration"] == 4.0
    assert info["k_neighbors"] == 90
    assert _spread_ratio(exag, y) < 0.8 * _spread_ratio(plain, y)


def test_lobpcg_finds_the_same_leading_eigenvector_as_arpack():
    """On a connected graph (cells along a noisy curve in 50 dimensions) the first spectral
    coordinate orders the cells along the curve with either solver."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 400))
    basis = rng.normal(size=(3, 50))
    X = np.c_[np.cos(3 * t), np.sin(3 * t), 4 * t] @ basis + rng.normal(0, 0.05, (400, 50))
    spectral = get_method("spectral")
    info: dict = {}
    lob = spectral.embed(X, seed=0, eigen_solver="lobpcg", info=info)
    arp = spectral.embed(X, seed=0, eigen_solver="arpack")
    assert info["eigen_solver"] == "lobpcg"
    assert abs(spearmanr(lob[:, 0], t).statistic) > 0.95
    assert abs(spearmanr(arp[:, 0], t).statistic) > 0.95


def test_nndescent_graph_is_scikit_learns_nearest_neighbours_affinity():
    """``neighbors: nndescent`` builds the matrix SpectralEmbedding(affinity="nearest_neighbors")
    builds (self included, 0/1, symmetrised by halves) from an approximate search: on 2,000
    cells along a curve nearly every edge is the exact one, and the embedding orders the cells
    along the curve as the exact graph's does."""
    from sklearn.neighbors import kneighbors_graph

    from scdrbench.methods.spectral import nndescent_affinity

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1, 2000))
    basis = rng.normal(size=(3, 50))
    X = np.c_[np.cos(3 * t), np.sin(3 * t), 4 * t] @ basis + rng.normal(0, 0.05, (2000, 50))
    X = X.astype(np.float32)
    exact = kneighbors_graph(X, 15, include_self=True)
    exact = 0.5 * (exact + exact.T)
    approx = nndescent_affinity(X, 15, seed=0, threads=1)
    assert approx.shape == exact.shape and approx.nnz == pytest.approx(exact.nnz, rel=0.01)
    assert np.allclose(approx.diagonal(), 1.0)
    assert abs(approx - exact).sum() < 0.01 * exact.sum()
    info: dict = {}
    emb = get_method("spectral").embed(
        X, seed=0, eigen_solver="lobpcg", neighbors="nndescent", info=info
    )
    assert info["neighbors"] == "nndescent" and emb.shape == (2000, 2)
    assert abs(spearmanr(emb[:, 0], t).statistic) > 0.95


def test_phate_lean_uses_its_landmarks(blobs):
    """With fewer landmarks than cells PHATE's diffusion runs on the landmark operator, its
    graph on pynndescent's neighbours."""
    X, y = blobs
    module, params = _params("phate_lean")
    info: dict = {}
    emb = module.embed(X, seed=0, info=info, **params)
    assert info["n_landmark"] == 50 and info["neighbors"] == "nndescent"
    assert knn_accuracy(emb, y) >= 0.9


#: (algorithm, the variant's params, the module's dict of its measured peaks)
VARIANT_PEAKS = [
    ("spectral", {"eigen_solver": "lobpcg"}, "MEASURED_PEAK_MB_LOBPCG"),
    ("spectral", {}, "MEASURED_PEAK_MB_V4"),
    ("phate", {"n_landmark": 1000}, "MEASURED_PEAK_MB_LEAN"),
    ("umap", {"densmap": True}, "MEASURED_PEAK_MB_DENSMAP"),
]


@pytest.mark.parametrize(("algorithm", "params", "measured"), VARIANT_PEAKS)
def test_variant_memory_models_bound_their_measured_peaks(algorithm, params, measured):
    """The same bound as tests/test_registry.py's for the defaults (at or above each measured
    peak, within 1.3x), for the settings the ladder runs beside them."""
    module = get_method(algorithm)
    peaks = getattr(module, measured)
    assert len(peaks) >= 2
    for n_cells, peak in peaks.items():
        model = module.estimate_memory_mb(n_cells, 50, **params)
        assert peak <= model <= 1.3 * peak, (algorithm, params, n_cells, peak, model)


def test_newer_methods_declare_measured_peaks():
    """Each newer method's memory model rests on peaks measured on the proxy (10k and 30k)."""
    for name in ("pacmap", "trimap", "phate", "diffmap", "spectral", "true_features"):
        assert {10_000, 30_000} <= set(get_method(name).MEASURED_PEAK_MB), name


def test_diffmap_through_pynndescent_as_scanpy_above_8192_cells(blobs, monkeypatch):
    """From 8,192 cells scanpy searches neighbours with pynndescent, whose csr_array its own
    code could not read ("'csr_array' object has no attribute 'getnnz'", the ladder's 10k and
    30k rungs); diffmap hands it the project's transformer there. Lowered here to the blobs."""
    X, y = blobs
    diffmap = get_method("diffmap")
    monkeypatch.setattr(diffmap, "SCANPY_EXACT_BELOW", 100)
    a = diffmap.embed(X, seed=0)
    assert a.shape == (X.shape[0], 2) and np.all(np.isfinite(a))
    np.testing.assert_allclose(a, diffmap.embed(X, seed=0), rtol=1e-5, atol=1e-5)
    assert knn_accuracy(a, y) >= 0.9


def test_the_ladder_skips_default_spectral_where_its_lu_factors_exceed_the_budget():
    """The ladder's own check (``predicted_overruns``, which writes its skip rows) on the newer
    methods: ARPACK's factorisation puts ``spectral`` over 22 GiB from 100k cells on (fitted to
    the calibrated proxy's 10k and 30k peaks), and densMAP's Lanczos basis puts ``densmap`` over
    it at 1.3M (where its job ran out of memory), while ``spectral_lobpcg``, PHATE with either
    setting, ``densmap_pca``, diffmap, pacmap, trimap and the true features stay within it."""
    from scdrbench.common.config import predicted_overruns
    from scdrbench.stages.check_config import check

    config = check([str(ROOT / "benchmarks" / "ladder.yaml")])
    newer = ["spectral", "spectral_lobpcg", "phate", "phate_lean", "densmap", "densmap_pca"]
    newer += ["diffmap", "pacmap", "trimap", "true_features", "tsne_exag"]
    config["selection"]["methods"] = newer
    overs = [(30_000, []), (100_000, ["spectral"]), (1_306_127, ["spectral", "densmap"])]
    for n_cells, over in overs:
        found = predicted_overruns(config, {"rung": {"n_cells": n_cells}})
        assert [m for _, m, _ in found] == over, n_cells
    assert "src/scdrbench/methods/spectral.py" in found[0][2]


def test_stability_at_100k_is_a_valid_overlay_of_the_ladder():
    """benchmarks/stability_100k.yaml (issue 25): the four methods on the 100k rung, 3 seeds and
    3 subsamples, a config the workflow accepts (the rung is one of its data sets)."""
    from scdrbench.stages.check_config import check

    overlay = [str(ROOT / "benchmarks" / f) for f in ("ladder.yaml", "stability_100k.yaml")]
    config = check(overlay)
    assert config["selection"]["methods"] == ["tsne", "umap", "ae_keras", "ae_tf"]
    assert config["stability"]["datasets"] == ["proxy_1m_n100000"]
    assert config["stability"]["seeds"] == 3 and config["stability"]["subsamples"] == 3
