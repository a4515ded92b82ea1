"""Unit tests of the neural embedding methods on small seeded synthetic data.

Each method is fitted once per (seed, data) and cached, so the shape, loss, quality and
determinism checks share fits. Epochs are cut down through params to keep the file short.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import scipy.sparse as sp

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from scdrbench.common.errors import ScdrbenchError  # noqa: E402
from scdrbench.methods import _nn  # noqa: E402
from tests.conftest import method_cases  # noqa: E402

pytestmark = pytest.mark.slow

N_CELLS, N_DIMS, N_CLUSTERS = 600, 19, 5

# Small params per method (each module's TEST_PARAMS): enough to separate the blobs, fast on 2 cores.
FAST = method_cases(neural=True)
METHODS = list(FAST)


def make_blobs(n=N_CELLS, d=N_DIMS, k=N_CLUSTERS, seed=0):
    """Well-separated Gaussian blobs with PC-like decaying feature scales."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(k, d))
    labels = np.arange(n) % k
    X = (centers[labels] + rng.normal(size=(n, d))) * np.linspace(3.0, 0.5, d)
    return X.astype(np.float32), labels


def make_expression(n=N_CELLS, genes=200, k=N_CLUSTERS, seed=1):
    """Sparse non-negative 'log-expression': each cluster over-expresses its own genes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    rates = np.full((k, genes), 0.3)
    for c in range(k):
        rates[c, rng.choice(genes, size=30, replace=False)] = 4.0
    counts = rng.poisson(rates[labels])
    return sp.csr_matrix(np.log1p(counts).astype(np.float32)), labels


BLOBS = make_blobs()
EXPRESSION = make_expression()


def data_for(method):
    return EXPRESSION if method == "tsne_ae" else BLOBS


_CACHE: dict = {}


def fit(method, seed=0):
    """(embedding, info) of ``method`` on its fixture, cached per seed."""
    key = (method, seed)
    if key not in _CACHE:
        module = importlib.import_module(f"scdrbench.methods.{method}")
        X, _ = data_for(method)
        info: dict = {}
        emb = module.embed(X, seed=seed, info=info, threads=1, **FAST[method])
        _CACHE[key] = (emb, info)
    return _CACHE[key]


def knn_accuracy(emb, labels):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return cross_val_score(KNeighborsClassifier(n_neighbors=10), emb, labels, cv=5).mean()


@pytest.mark.parametrize("method", METHODS)
def test_shape_finite_and_info(method):
    emb, info = fit(method)
    assert emb.shape == (N_CELLS, 2)
    assert emb.dtype == np.float32
    assert np.all(np.isfinite(emb))
    assert info["device"] in ("CPU", "GPU:0")
    assert info["input_scaling"] == _nn.INPUT_SCALING
    assert info["epochs_run"] == len(info["history"]) >= 1
    assert np.isfinite(info["final_loss"])


@pytest.mark.parametrize("method", METHODS)
def test_loss_decreases(method):
    _, info = fit(method)
    assert info["history"][-1] < info["history"][0]


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_embedding(method):
    emb, _ = fit(method)
    module = importlib.import_module(f"scdrbench.methods.{method}")
    X, _ = data_for(method)
    again = module.embed(X, seed=0, threads=1, **FAST[method])
    np.testing.assert_allclose(again, emb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_knn_accuracy_beats_random(method):
    emb, _ = fit(method)
    _, labels = data_for(method)
    random_emb = np.random.default_rng(0).normal(size=(N_CELLS, 2))
    assert knn_accuracy(random_emb, labels) < 0.5
    assert knn_accuracy(emb, labels) >= 0.9


def one_epoch(method):
    """One short epoch on a copy of the fixture: embed itself runs, never from the fit cache.
    parametric_umap keeps its test settings: n_epochs 1 on 600 cells leaves umap-learn fewer
    edges than 10 batches, steps_per_epoch 0, and Keras never ends the epoch."""
    params = dict(FAST[method])
    if "epochs" in params:
        params["epochs"] = 1
    if "n_iter" in params:
        params["n_iter"] = 50
    return params


@pytest.mark.parametrize("method", METHODS)
def test_input_is_not_modified(method):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    X = data_for(method)[0].copy()
    before = X.copy()
    emb = module.embed(X, seed=3, threads=1, **one_epoch(method))
    assert emb.shape == (N_CELLS, 2)
    if sp.issparse(X):
        assert (X != before).nnz == 0 and X.dtype == before.dtype
    else:
        np.testing.assert_array_equal(X, before)
        assert X.dtype == before.dtype


# ----- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ae_keras", "ae_tf", "tsne_ae"])
def test_fewer_cells_than_batch_size(method):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    X, _ = data_for(method)
    with pytest.raises(ScdrbenchError, match="batch_size"):
        module.embed(X[:100], seed=0, batch_size=512, epochs=1)


def test_fewer_cells_than_batch_size_scvis_and_pumap():
    from scdrbench.methods import parametric_umap, scvis

    with pytest.raises(ScdrbenchError, match="batch_size"):
        scvis.embed(BLOBS[0][:100], seed=0, batch_size=512, epochs=1)
    with pytest.raises(ScdrbenchError, match="batch_size"):
        parametric_umap.embed(BLOBS[0][:100], seed=0, batch_size=512)


@pytest.mark.parametrize("method", ["ae_keras", "ae_tf", "scvis"])
def test_fewer_dimensions_than_bottleneck(method):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    with pytest.raises(ScdrbenchError, match="input has 1 dimension.*bottleneck.*more PCs"):
        module.embed(BLOBS[0][:, :1], seed=0, epochs=1)


def test_tsne_ae_bottleneck_wider_than_input():
    from scdrbench.methods import tsne_ae

    X = EXPRESSION[0][:, :10]
    with pytest.raises(ScdrbenchError, match=r"input has 10 dimensions.*params\.bottleneck"):
        tsne_ae.embed(X, seed=0, bottleneck=24, epochs=1)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(method, bad):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    X, _ = data_for(method)
    X = X.copy()
    if sp.issparse(X):
        X.data[3] = bad
    else:
        X[5, 3] = bad
    with pytest.raises(ScdrbenchError, match="NaN or infinite"):
        module.embed(X, seed=0, **FAST[method])


@pytest.mark.parametrize("widths", [[18, 18, 10], [10, 12, 4], [18, 2], [25, 10], [5, 1]])
@pytest.mark.parametrize("method", ["ae_keras", "ae_tf"])
def test_layer_widths_must_narrow(method, widths):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    with pytest.raises(ScdrbenchError, match="hidden_layers"):
        module.embed(BLOBS[0], seed=0, hidden_layers=widths, epochs=1)


def test_tsne_ae_and_scvis_widths_must_narrow():
    from scdrbench.methods import scvis, tsne_ae

    with pytest.raises(ScdrbenchError, match="hidden_layers"):
        tsne_ae.embed(EXPRESSION[0], seed=0, hidden_layers=[64, 128], epochs=1)
    with pytest.raises(ScdrbenchError, match="hidden_layers"):
        scvis.embed(BLOBS[0], seed=0, encoder_layers=[32, 64], epochs=1)


def test_scvis_perplexity_too_large_for_batch():
    from scdrbench.methods import scvis

    with pytest.raises(ScdrbenchError, match="perplexity"):
        scvis.embed(BLOBS[0], seed=0, batch_size=64, perplexity=30, epochs=1)


# ----- helpers -----------------------------------------------------------------------------


def test_default_ladder_is_the_essays():
    assert _nn.encoder_widths("x", 19, 2, None) == list(range(18, 2, -1))
    assert _nn.encoder_widths("x", 3, 2, None) == []


def test_scaler_dense_and_sparse_agree():
    X = EXPRESSION[0]
    dense = X.toarray()
    a, b = _nn.Scaler.fit(X), _nn.Scaler.fit(dense)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-6)
    assert a.scale == pytest.approx(b.scale, rel=1e-5)
    out = b.transform(dense)
    assert out.std(axis=0).max() == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(a.transform(X[:10]), out[:10], rtol=1e-4, atol=1e-5)


def test_auto_batch_and_epochs():
    assert _nn.auto_batch_size(900_000, None, "x") == 8192
    assert _nn.auto_batch_size(540, None, "x") == 64
    assert _nn.auto_epochs(900_000, 8192, None, target_steps=1500) == 14
    assert _nn.auto_epochs(540, 64, None, target_steps=3000, max_epochs=500) == 334


@pytest.mark.parametrize("method", METHODS)
def test_estimate_memory_grows_with_cells(method):
    module = importlib.import_module(f"scdrbench.methods.{method}")
    small = module.estimate_memory_mb(1_000, 19)
    large = module.estimate_memory_mb(1_000_000, 19)
    assert 0 < small < large
