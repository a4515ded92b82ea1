"""The ae_keras autoencoder written with bare TensorFlow: what Keras does for you, spelled out.

Same network, loss, defaults and input scaling as ``src/scdrbench/methods/ae_keras.py``; the network,
its hand-written Adam and training loop live in the shared core,
:mod:`scdrbench.methods._autoencoder` (which ``tsne_ae`` trains too): weights as ``tf.Variable``\\ s,
a ``tf.GradientTape`` step compiled with ``tf.function``, mini-batches cut by hand from a seeded
permutation, early stopping that keeps the best validation epoch.
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.methods import _autoencoder as ae
from scdrbench.methods import _nn

log = logging.getLogger("scdrbench.methods.ae_tf")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow",)
VERSIONED = ("tensorflow-cpu", "tensorflow")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"epochs": 40, "batch_size": 64}
PARAMS = _nn.AUTOENCODER_PARAMS
NARROWING_LAYERS = ("hidden_layers",)

NAME = "ae_tf"


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    hidden_layers: list[int] | None = None,
    activation: str = "elu",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 2e-3,
    early_stopping_patience: int = 10,
    validation_fraction: float = 0.1,
) -> np.ndarray:
    """Train the autoencoder on ``X`` (cells x PCs); return the 2-D bottleneck, float32 ``(n, 2)``.

    Parameters and ``info`` keys are those of :func:`scdrbench.methods.ae_keras.embed`.
    """
    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    p = ae.resolve_params(n, d, name=NAME, seed=seed, **ae.training(locals()))
    tf = _nn.setup_tensorflow(seed, threads)
    Xs = _nn.scaled_dense(X, _nn.Scaler.fit(X))

    def get_batch(idx):
        return Xs[idx]

    ae.log_training(log, tf, d, p, ae.BOTTLENECK)
    model, hist = ae.fit(
        tf,
        get_batch,
        p,
        n_dims=d,
        bottleneck=ae.BOTTLENECK,
        activation=activation,
        seed=seed,
        logger=log,
    )
    emb = ae.encode_all(model, get_batch, n)
    final_loss = ae.mean_loss(model, get_batch, n)
    log.info("final reconstruction loss (all cells) %.5f", final_loss)
    ae.report(
        info,
        tf,
        p,
        history=hist["loss"],
        val_history=hist["val_loss"],
        final_loss=final_loss,
        activation=activation,
    )
    return emb


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Input and its scaled copy, batch copies, the embedding, plus TensorFlow itself."""
    return n_cells * n_features * 4 * 3 / 1e6 + n_cells * 2 * 4 * 2 / 1e6 + 700
