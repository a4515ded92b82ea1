"""Parametric UMAP (Sainburg, McInnes & Gentner 2021): a network trained on the UMAP graph.

umap-learn's ``ParametricUMAP`` (Keras 3 on TensorFlow): the fuzzy kNN graph is built as for
UMAP, then an encoder (default three dense ReLU layers of 100 units, as umap-learn's) is trained
so that the UMAP cross-entropy of its 2-D outputs over sampled edges (with negative sampling)
is small. The embedding is the encoder's output for every cell.

umap-learn materialises every edge ``n_epochs * weight`` times before training (int64 pairs),
which for a million cells at its default 200 epochs is tens of GB. ``n_epochs=None`` (the
registry default) therefore picks ``clip(round(2e7 / (n_cells * n_neighbors)), 1, 200)``
epochs: ~200 for a few thousand cells, 1 for a million (still ~10^4 gradient steps).
The input is scaled the shared way (:data:`scdrbench.methods._nn.INPUT_SCALING`); seeding and
thread set-up are shared too, and ``random_state`` makes umap-learn's graph deterministic
(single-threaded nearest-neighbour descent).
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods import _nn
from scdrbench.methods._params import integer, integers, number

log = logging.getLogger("scdrbench.methods.parametric_umap")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow", "keras", "umap.parametric_umap")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras", "umap-learn", "pynndescent")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"n_epochs": 30, "batch_size": 256}
PARAMS = {
    "n_neighbors": integer(15, minimum=2),
    "min_dist": number(0.1, minimum=0),
    "hidden_layers": integers([100, 100, 100], minimum=1, min_items=1),
    "n_epochs": integer(
        minimum=1, maximum=1000, description="absent: clip(round(2e7/(n*n_neighbors)), 1, 200)"
    ),
    "batch_size": integer(minimum=1, description="edges per step; absent: min(1000, n_cells)"),
    "learning_rate": number(0.001, gt=0, maximum=1),
}

NAME = "parametric_umap"
EDGE_BUDGET = 2e7


def auto_n_epochs(n_cells: int, n_neighbors: int, n_epochs: int | None) -> int:
    """Resolve ``n_epochs`` (None: keep the edge list near ``EDGE_BUDGET`` entries)."""
    if n_epochs is not None:
        if int(n_epochs) < 1:
            raise ScdrbenchError(f"{NAME}: params.n_epochs must be at least 1, got {n_epochs}")
        return int(n_epochs)
    return int(np.clip(round(EDGE_BUDGET / (n_cells * n_neighbors)), 1, 200))


def _checked(n: int, n_neighbors: int, batch_size, learning_rate, hidden_layers):
    """``(batch size, encoder widths)``, checked; a bad one is a ScdrbenchError naming
    ``params.<key>``."""
    if not 2 <= n_neighbors < n:
        raise ScdrbenchError(
            f"{NAME}: params.n_neighbors {n_neighbors} must be at least 2 and below the number of "
            f"cells ({n})"
        )
    if batch_size is None:
        batch_size = min(1000, n)
    _nn.check_positive(NAME, learning_rate=learning_rate, batch_size=batch_size)
    if n < batch_size:
        raise ScdrbenchError(
            f"{NAME}: only {n} cells for params.batch_size {batch_size}; lower params.batch_size"
        )
    widths = [int(w) for w in hidden_layers]
    if not widths or any(w < 1 for w in widths):
        raise ScdrbenchError(f"{NAME}: params.hidden_layers must be positive widths, got {widths}")
    return batch_size, widths


def _parametric_umap():
    """umap-learn's ParametricUMAP class, or a ScdrbenchError saying what it needs."""
    try:
        from umap.parametric_umap import ParametricUMAP
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ScdrbenchError(
            f"{NAME}: umap-learn's ParametricUMAP cannot be imported here ({err}); it needs "
            "umap-learn with TensorFlow and Keras 3 installed"
        ) from err
    return ParametricUMAP


def _fit_quietly(model, Xs) -> None:
    """``model.fit(Xs)`` without umap-learn's and Keras's warnings about settings made here."""
    import warnings

    with warnings.catch_warnings():
        for message in (".*n_jobs value.*", ".*shuffle=True.*", ".*build\\(\\)` was called.*"):
            warnings.filterwarnings("ignore", message=message)
        model.fit(Xs)


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    hidden_layers: tuple[int, ...] | list[int] = (100, 100, 100),
    n_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
) -> np.ndarray:
    """Fit ParametricUMAP to ``X`` (cells x PCs); return the encoder output, float32 ``(n, 2)``.

    Parameters
    ----------
    n_neighbors, min_dist
        As for UMAP.
    hidden_layers
        Encoder widths (ReLU); default ``[100, 100, 100]`` (umap-learn's).
    n_epochs
        UMAP epochs (how often each edge is sampled, by weight); ``None``: auto (see above).
    batch_size
        Edges per gradient step; ``None``: umap-learn's 1000, or the number of cells when
        fewer.
    learning_rate
        Adam's step size (umap-learn: 1e-3, gradients clipped at 4).

    ``info`` gets ``history`` (loss per Keras epoch, a tenth of the edges each), ``final_loss``,
    ``epochs_run``, ``device``, ``input_scaling``, ``n_epochs``.
    """
    # Longer than 80 lines: the signature and numpydoc docstring list every parameter of the method
    # contract (tests/test_registry.py checks them against PARAMS); the code is 60 lines, the seeded
    # steps in the order they draw random numbers.
    X = _nn.check_matrix(X, NAME, min_cells=4)
    n, d = X.shape
    batch_size, widths = _checked(n, n_neighbors, batch_size, learning_rate, hidden_layers)
    epochs = auto_n_epochs(n, n_neighbors, n_epochs)

    tf = _nn.setup_tensorflow(seed, threads)
    import keras

    ParametricUMAP = _parametric_umap()
    Xs = _nn.scaled_dense(X, _nn.Scaler.fit(X))
    encoder = keras.Sequential(
        [keras.Input(shape=(d,))]
        + [keras.layers.Dense(w, activation="relu") for w in widths]
        + [keras.layers.Dense(2, name="z")]
    )
    history: list[float] = []

    def log_epoch(epoch, logs):
        history.append(float(logs["loss"]))
        log.info("epoch %d/10: loss %.5f", epoch + 1, logs["loss"])

    model = ParametricUMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        n_epochs=epochs,
        encoder=encoder,
        batch_size=int(batch_size),
        random_state=int(seed),
        n_jobs=1,
        verbose=False,
        keras_fit_kwargs={
            "verbose": 0,
            "callbacks": [keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)],
        },
    )
    model.optimizer = keras.optimizers.Adam(learning_rate, clipvalue=4.0)
    log.info(
        "parametric UMAP on %d cells x %d dims: encoder %s, n_neighbors %d, %d UMAP epochs, "
        "device %s",
        n,
        d,
        widths,
        n_neighbors,
        epochs,
        _nn.device_name(tf),
    )
    _fit_quietly(model, Xs)
    data = _nn.dataset(tf, Xs, _nn.PREDICT_BATCH, target=False)
    emb = np.asarray(encoder.predict(data, verbose=0), dtype=np.float32)
    _nn.finish_info(
        info,
        history=history,
        final_loss=history[-1] if history else float("nan"),
        epochs_run=len(history),
        device=_nn.device_name(tf),
        input_scaling=_nn.INPUT_SCALING,
        n_epochs=epochs,
    )
    return emb


#: Bytes per cell the terms of the model do not account for, fitted to the measured peaks of the
#: parametric_umap job (benchmarks/results/measured_peaks.tsv, which the model stays above; 6.6 to
#: 8.6 KB per cell from 30k to 1.3M cells): umap-learn's graph construction and Keras's edge
#: dataset keep more copies than the terms count.
UNACCOUNTED_BYTES_PER_CELL = 7_500


def estimate_memory_mb(n_cells: int, n_features: int, n_neighbors: int = 15, **params) -> float:
    """Input copies, the kNN graph, the expanded edge list (2 x int64 per sampled edge), TF and
    the libraries (1,150 MB), and UNACCOUNTED_BYTES_PER_CELL: 12.6 GB at 1.3M cells, where the
    job peaked at 11.1 GB."""
    epochs = auto_n_epochs(n_cells, n_neighbors, params.get("n_epochs"))
    edges = n_cells * n_neighbors * 0.6 * epochs
    per_cell = n_features * 4 * 3 + n_neighbors * 24 + UNACCOUNTED_BYTES_PER_CELL
    return (n_cells * per_cell + edges * 32) / 1e6 + 1_150
