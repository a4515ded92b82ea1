"""t-SNE on the bottleneck of an autoencoder trained on the highly variable genes.

The essay's "pre-dimensionality reduction in a non-linear way": instead of PCA before t-SNE,
an autoencoder squeezes the log-normalised HVG expression into ``bottleneck`` (default 24)
dimensions, and openTSNE (``src/scdrbench/methods/tsne.py``: FFT gradients, PCA initialisation,
learning rate n/12) embeds those codes in 2-D.

The autoencoder is the shared core's network and training loop (:mod:`scdrbench.methods._autoencoder`, ``ae_tf``'s method) (ELU hidden layers, linear bottleneck
and output, MSE, Adam, seeded validation split with early stopping), fed one batch at a time:
the input may be a scipy CSR matrix (1.3M cells x 2000 genes would be 10 GB dense), and only
each mini-batch is densified and scaled. Hidden widths default to those of ``[128, 64]`` that
lie strictly between the input width and the bottleneck. Input scaling is the shared one
(:data:`scdrbench.methods._nn.INPUT_SCALING`: centred genes, divided by the largest gene
standard deviation).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from scdrbench.methods import _autoencoder as ae
from scdrbench.methods import _nn
from scdrbench.methods._params import ACTIVATION, integer, integers, number

log = logging.getLogger("scdrbench.methods.tsne_ae")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow", "openTSNE")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "openTSNE")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"epochs": 20, "batch_size": 64, "n_iter": 250}
PARAMS = {
    "bottleneck": integer(24, minimum=2, maximum=256),
    "hidden_layers": integers(
        minimum=3,
        unique=True,
        description="strictly narrowing genes -> bottleneck (checked at validation); absent: "
        "those of [128, 64] between input and bottleneck",
    ),
    "activation": ACTIVATION,
    "epochs": integer(minimum=1),
    "batch_size": integer(minimum=1),
    "learning_rate": number(0.002, gt=0, maximum=1),
    "early_stopping_patience": integer(10, minimum=0),
    "validation_fraction": number(0.1, minimum=0, lt=0.5),
    "perplexity": number(30, gt=0),
    "n_iter": integer(750, minimum=50),
}
NARROWING_LAYERS = ("hidden_layers",)

NAME = "tsne_ae"
DEFAULT_HIDDEN = (128, 64)


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    bottleneck: int = 24,
    hidden_layers: list[int] | None = None,
    activation: str = "elu",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 2e-3,
    early_stopping_patience: int = 10,
    validation_fraction: float = 0.1,
    perplexity: float = 30,
    n_iter: int = 750,
) -> np.ndarray:
    """Autoencode ``X`` (cells x HVGs, dense or sparse) to ``bottleneck`` dims, then t-SNE.

    Parameters
    ----------
    bottleneck
        Width of the code t-SNE sees (default 24; the essay suggests 20-30).
    hidden_layers
        Encoder widths between the genes and the bottleneck, strictly narrowing; the decoder
        mirrors them. Default: those of ``[128, 64]`` between the input width and the bottleneck.
    activation, epochs, batch_size, learning_rate, early_stopping_patience, validation_fraction
        As for ``ae_keras``/``ae_tf``.
    perplexity, n_iter
        openTSNE's perplexity (default 30) and iterations after early exaggeration (750).

    ``info`` gets the autoencoder's ``history``, ``val_history``, ``final_loss`` (reconstruction
    MSE of all cells), ``epochs_run``, ``device``, ``input_scaling``, and t-SNE's
    ``tsne_kl_history`` and ``kl_divergence``.
    """
    # Longer than 80 lines: the signature and numpydoc docstring list every parameter of the method
    # contract (tests/test_registry.py checks them against PARAMS); the code is 61 lines, the seeded
    # steps in the order they draw random numbers.
    from scdrbench.methods import tsne

    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    bottleneck = int(bottleneck)
    if bottleneck < 2:
        raise _nn.ScdrbenchError(f"{NAME}: params.bottleneck must be at least 2, got {bottleneck}")
    if hidden_layers is None:
        hidden_layers = [w for w in DEFAULT_HIDDEN if bottleneck < w < d]
    p = ae.resolve_params(
        n,
        d,
        name=NAME,
        seed=seed,
        bottleneck=bottleneck,
        bottleneck_param="params.bottleneck",
        **ae.training(locals()),
    )
    tf = _nn.setup_tensorflow(seed, threads)
    scaler = _nn.Scaler.fit(X)
    if sp.issparse(X):

        def get_batch(idx):
            return scaler.transform(X[idx])

    else:
        Xs = _nn.scaled_dense(X, scaler)

        def get_batch(idx):
            return Xs[idx]

    ae.log_training(log, tf, d, p, bottleneck, "sparse input" if sp.issparse(X) else "")
    model, hist = ae.fit(
        tf,
        get_batch,
        p,
        n_dims=d,
        bottleneck=bottleneck,
        activation=activation,
        seed=seed,
        logger=log,
    )
    codes = ae.encode_all(model, get_batch, n)
    final_loss = ae.mean_loss(model, get_batch, n)
    log.info("autoencoder final loss %.5f; t-SNE on %d x %d codes", final_loss, n, bottleneck)
    tsne_info: dict = {}
    emb = tsne.embed(
        codes, seed=seed, info=tsne_info, threads=threads, perplexity=perplexity, n_iter=n_iter
    )
    ae.report(
        info,
        tf,
        p,
        history=hist["loss"],
        val_history=hist["val_loss"],
        final_loss=final_loss,
        bottleneck=bottleneck,
        tsne_kl_history=tsne_info.get("history", []),
        kl_divergence=tsne_info.get("kl_divergence", float("nan")),
    )
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(
    n_cells: int, n_features: int, bottleneck: int = 24, perplexity: float = 30, **params
) -> float:
    """Sparse input (~10% non-zero, float32 + int32 index), batch buffers, codes, t-SNE's kNN."""
    from scdrbench.methods import tsne

    sparse_input = n_cells * n_features * 0.1 * 8 / 1e6
    batch = 4096 * n_features * 4 * 6 / 1e6
    return (
        sparse_input
        + batch
        + n_cells * bottleneck * 4 * 2 / 1e6
        + tsne.estimate_memory_mb(n_cells, bottleneck, perplexity=perplexity)
        + 700
    )
