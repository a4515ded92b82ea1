"""The python-family methods and the random control: shape, seeds, quality bars."""

from __future__ import annotations

import re

import numpy as np
import pytest

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods import get_method
from tests.conftest import knn_accuracy, method_cases

#: every algorithm without TensorFlow, with its short test settings (its module's TEST_PARAMS)
FAST = method_cases(neural=False)
#: parameter variants of a module that are methods of their own in the config
VARIANTS = {"densmap": ("umap", {**FAST["umap"], "densmap": True})}


@pytest.mark.parametrize("name", list(FAST))
def test_shape_finite_and_seeded(name, blobs):
    X, _ = blobs
    module = get_method(name)
    a = module.embed(X, seed=1, **FAST[name])
    b = module.embed(X, seed=1, **FAST[name])
    # a positive control may keep every input dimension (OUTPUT_DIMS = "input")
    dims = X.shape[1] if getattr(module, "OUTPUT_DIMS", 2) == "input" else 2
    assert a.shape == (X.shape[0], dims)
    assert a.dtype == np.float32
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in FAST if n != "random"])
def test_quality_on_separable_blobs(name, blobs):
    X, y = blobs
    emb = get_method(name).embed(X, seed=0, **FAST[name])
    assert knn_accuracy(emb, y) >= 0.9


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_seeded_and_separating(name, blobs):
    X, y = blobs
    algorithm, params = VARIANTS[name]
    module = get_method(algorithm)
    a = module.embed(X, seed=2, **params)
    np.testing.assert_allclose(a, module.embed(X, seed=2, **params), rtol=1e-5, atol=1e-5)
    assert knn_accuracy(a, y) >= 0.9


def test_densmap_changes_the_embedding(blobs):
    X, _ = blobs
    umap = get_method("umap")
    plain = umap.embed(X, seed=0, n_epochs=100)
    dens = umap.embed(X, seed=0, n_epochs=100, densmap=True)
    assert not np.allclose(plain, dens)


def test_umap_steps_reach_the_job_log_not_the_console_and_change_nothing(blobs, caplog, capsys):
    """umap-learn's and pynndescent's verbose steps, each with the peak RSS so far, go to the
    job's log (so a job stopped by its budget says where it was); the console stays quiet and
    the embedding is the one umap-learn gives without them."""
    from umap import UMAP

    X, _ = blobs
    X = X.astype(np.float32)
    with caplog.at_level("INFO", logger="scdrbench.methods.umap"):
        ours = get_method("umap").embed(X, seed=0, n_epochs=50)
    lines = [r.getMessage() for r in caplog.records if r.name == "scdrbench.methods.umap"]
    assert any("umap-learn:" in line and "Construct fuzzy simplicial set" in line for line in lines)
    assert any("completed 0 / 50 epochs" in line for line in lines)
    assert all(re.search(r"\(peak RSS so far [\d,]+ MB\)$", line) for line in lines)
    out = capsys.readouterr()
    assert "epochs" not in out.out + out.err and "Construct" not in out.out + out.err
    bare = UMAP(n_components=2, n_epochs=50, random_state=0, n_jobs=1).fit_transform(X)
    np.testing.assert_array_equal(ours, np.asarray(bare, dtype=np.float32))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("pacmap", {"n_neighbors": 500}, "pacmap: params.n_neighbors 500 must be smaller"),
        ("trimap", {"n_inliers": 400}, "trimap: params.n_inliers 400 must be smaller"),
        ("phate", {"knn": 500}, "phate: params.knn 500 must be smaller"),
        ("phate", {"t": 0}, "phate: params.t must be 'auto' or a positive integer"),
        ("diffmap", {"n_neighbors": 500}, "diffmap: params.n_neighbors 500 must be smaller"),
        ("spectral", {"n_neighbors": 500}, "spectral: params.n_neighbors 500 must be smaller"),
    ],
)
def test_new_methods_reject_impossible_params(name, params, message, blobs):
    X, _ = blobs
    with pytest.raises(ScdrbenchError, match=message):
        get_method(name).embed(X, seed=0, **params)


def test_random_control_stays_near_chance(blobs):
    X, y = blobs
    emb = get_method("random").embed(X, seed=0)
    assert knn_accuracy(emb, y) < 0.6  # 3 balanced classes: chance is 1/3


def test_random_depends_on_seed(blobs):
    X, _ = blobs
    r = get_method("random")
    assert not np.allclose(r.embed(X, seed=0), r.embed(X, seed=1))


def test_tsne_records_kl_history(blobs):
    X, _ = blobs
    info = {}
    get_method("tsne").embed(X, seed=0, info=info, **FAST["tsne"])
    assert info["kl_divergence"] > 0
    assert len(info["history"]) >= 3
    assert info["history"][-1] < info["history"][0]


def test_nan_input_is_rejected(blobs):
    X, _ = blobs
    X = X.copy()
    X[3, 4] = np.nan
    for name in FAST:
        with pytest.raises(ScdrbenchError, match="NaN"):
            get_method(name).embed(X, seed=0)


def test_perplexity_too_large(blobs):
    X, _ = blobs
    with pytest.raises(ScdrbenchError, match="perplexity"):
        get_method("tsne").embed(X[:30], seed=0, perplexity=30)


def test_pca_components_out_of_range(blobs):
    X, _ = blobs
    with pytest.raises(ScdrbenchError, match="components"):
        get_method("pca").embed(X[:, :3], seed=0, components=[1, 5])


def test_unknown_algorithm_lists_valid_ones():
    with pytest.raises(ScdrbenchError, match="valid algorithms: ae_citeseq, ae_keras, .*pca"):
        get_method("nosuch")


def test_memory_estimates_grow_with_cells():
    for name in FAST:
        m = get_method(name)
        assert m.estimate_memory_mb(1_000_000, 50) > m.estimate_memory_mb(1_000, 50) > 0


def test_umap_memory_model_counts_the_spectral_initialisation():
    """About 70% of UMAP's peak at 1.3M cells (11.9 of 17.1 GB on the calibrated proxy) is the
    Lanczos basis of its spectral initialisation: without it the model is far lower."""
    from scdrbench.common import peaks
    from scdrbench.methods.umap import estimate_memory_mb

    peak = peaks.read()["umap"][1_306_127]
    assert estimate_memory_mb(1_306_127, 50, init="random") < 0.35 * peak


def test_tsne_k_neighbors_bounds_the_graph_and_keeps_quality(blobs):
    X, y = blobs
    tsne = get_method("tsne")
    info: dict = {}
    emb = tsne.embed(X, seed=0, info=info, k_neighbors=25, **FAST["tsne"])
    assert info["k_neighbors"] == 25
    assert emb.shape == (X.shape[0], 2) and np.all(np.isfinite(emb))
    assert knn_accuracy(emb, y) >= 0.9
    again = tsne.embed(X, seed=0, k_neighbors=25, **FAST["tsne"])
    np.testing.assert_allclose(emb, again, rtol=1e-5, atol=1e-5)
    auto: dict = {}
    tsne.embed(X, seed=0, info=auto, **FAST["tsne"])
    assert auto["k_neighbors"] == 60  # 3 x perplexity 20
    # the memory estimate follows the graph size
    big = dict(n_cells=1_300_000, n_features=50, perplexity=350)
    assert tsne.estimate_memory_mb(**big, k_neighbors=350) < tsne.estimate_memory_mb(**big) / 2


def test_tsne_k_neighbors_below_perplexity_or_above_cells(blobs):
    X, _ = blobs
    with pytest.raises(ScdrbenchError, match=r"params\.k_neighbors 10 is below params\.perplexity"):
        get_method("tsne").embed(X, seed=0, perplexity=20, k_neighbors=10)
    with pytest.raises(ScdrbenchError, match=r"params\.k_neighbors 100 needs more than 100 cells"):
        get_method("tsne").embed(X[:100], seed=0, perplexity=20, k_neighbors=100)


def test_lean_affinities_equal_opentsne_and_embed_as_well():
    """``affinities: lean`` builds openTSNE's own matrix (float32 precision), with less memory."""
    from openTSNE.affinity import PerplexityBasedNN

    from scdrbench.methods.tsne import lean_affinities
    from tests.conftest import make_blobs

    X, y = make_blobs(n_per=400, n_classes=3, dims=20)  # >= 1000 cells: openTSNE's Annoy route
    ref = PerplexityBasedNN(X, perplexity=30, k_neighbors=90, n_jobs=1, random_state=0).P
    lean = lean_affinities(X, 30, 90, threads=1, seed=0).P
    assert lean.dtype == np.float64 and lean.indices.dtype == np.int32
    assert lean.nnz == ref.nnz
    assert abs(lean - ref).max() <= 1e-6 * ref.max()
    assert lean.sum() == pytest.approx(1.0)
    tsne = get_method("tsne")
    emb = tsne.embed(X, seed=0, affinities="lean", k_neighbors=90, **FAST["tsne"])
    assert emb.shape == (len(X), 2) and np.isfinite(emb).all()
    assert knn_accuracy(emb, y) >= 0.9
    # the ladder's peaks with perplexity 350 stay below the model (the defaults' peaks are
    # checked for every method in tests/test_registry.py)
    for n_cells, k, affinities, peak in [
        (30_000, "auto", "opentsne", 2_135),
        (100_000, "auto", "opentsne", 6_503),
        (1_306_127, 350, "lean", 17_275),
    ]:
        params = dict(perplexity=350, k_neighbors=k, affinities=affinities)
        assert peak <= tsne.estimate_memory_mb(n_cells, 50, **params) <= 1.3 * peak
    opentsne = tsne.estimate_memory_mb(1_306_127, 50, perplexity=350, k_neighbors=350)
    lean_mb = tsne.estimate_memory_mb(
        1_306_127, 50, perplexity=350, k_neighbors=350, affinities="lean"
    )
    assert lean_mb < 0.75 * opentsne


def test_umap_keeps_tensorflow_out(tmp_path):
    """`import umap` would import TensorFlow (~950 MB, 10-30 s); the umap method blocks it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, numpy as np\n"
        "from scdrbench.methods import get_method, import_backend\n"
        "m = get_method('umap'); import_backend(m)\n"
        "m.embed(np.random.default_rng(0).normal(size=(300, 5)), seed=0, n_epochs=20)\n"
        "print('tensorflow' in sys.modules, 'umap' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]


def test_phate_times_its_steps_in_the_job_log_not_on_the_console(blobs, caplog, capsys):
    X, _ = blobs
    with caplog.at_level("INFO", logger="scdrbench.methods.phate"):
        get_method("phate").embed(X, seed=0, **FAST["phate"])
    lines = [r.getMessage() for r in caplog.records if r.name == "scdrbench.methods.phate"]
    # graphtools' lines reach the job's log: each step's start always, its "Calculated ... in"
    # only for steps over 0.01 s (the whole fit is), with the peak RSS so far
    assert any("Calculating KNN search..." in line for line in lines)
    done = [line for line in lines if "Calculated PHATE in" in line]
    assert done and re.search(r"\(peak RSS so far [\d,]+ MB\)$", done[-1])
    out = capsys.readouterr()
    assert "graphtools" not in out.out + out.err and "Calculat" not in out.out + out.err


def test_phate_approximate_neighbours_seeded_separating_and_bounded(blobs, caplog):
    X, y = blobs
    phate = get_method("phate")
    params = {**FAST["phate"], "neighbors": "nndescent", "n_landmark": 100}
    info = {}
    with caplog.at_level("DEBUG", logger="scdrbench.methods.phate"):
        a = phate.embed(X, seed=3, info=info, **params)
    np.testing.assert_allclose(a, phate.embed(X, seed=3, **params), rtol=1e-5, atol=1e-5)
    assert knn_accuracy(a, y) >= 0.9
    assert info["neighbors"] == "nndescent" and info["n_landmark"] == 100
    lines = " ".join(r.getMessage() for r in caplog.records)
    # graphtools asked pynndescent's index, bounded by knn_max: never its exact search
    assert "pynndescent: 36 neighbours" in lines and "knn_max='35'" in lines
    assert "radius search" not in lines


def test_phate_approximate_neighbours_cost_their_index_in_the_memory_model():
    phate = get_method("phate")
    exact = phate.estimate_memory_mb(1_306_127, 50, n_landmark=1000)
    approximate = phate.estimate_memory_mb(1_306_127, 50, n_landmark=1000, neighbors="nndescent")
    # the index costs 1 to 2.2 GB more than the exact path's linear terms, and it spares the
    # exact path's radius search (cells squared), which costs more at 1.3M cells
    radius = 1_306_127**2 * phate.RADIUS_BYTES_PER_CELL_PAIR / 1e6
    assert 1_000 < approximate - (exact - radius) < 2_200
    assert approximate < exact
    assert phate.estimate_memory_mb(10_000, 50) - phate.estimate_memory_mb(5_000, 50) < 50
