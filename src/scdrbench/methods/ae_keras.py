"""Deep autoencoder in Keras 3; the 2-D linear bottleneck is the embedding.

The essay's network: on the ``d`` significant PCs (19 there), every hidden layer one unit smaller
than the one before, ``d -> d-1 -> ... -> 3 -> 2 -> 3 -> ... -> d-1 -> d``, ELU activations, a
linear bottleneck and a linear output, trained to reconstruct its (scaled) input with the mean
squared error and Adam. ``src/scdrbench/methods/ae_tf.py`` is the same network written with bare
TensorFlow.

Training length and batch size default to *auto* (:func:`scdrbench.methods._autoencoder.resolve_params`): batches of up
to 8192 cells and about ``TARGET_STEPS`` (1500) gradient steps at learning rate 2e-3, so 1M cells
train for 14 epochs (4.5-6.5 s each on 2 cores: a 65-90 s fit; final loss 0.0132 on the
benchmark's synthetic data, against 0.0116-0.0130 for 3000 steps at batch 4096 in twice the time) and a few thousand cells for up to ``MAX_EPOCHS`` epochs; a seeded
``validation_fraction`` of the cells is held out for early stopping (best weights restored).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from scdrbench.methods import _autoencoder as ae
from scdrbench.methods import _nn

log = logging.getLogger("scdrbench.methods.ae_keras")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow", "keras")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"epochs": 40, "batch_size": 64}
PARAMS = _nn.AUTOENCODER_PARAMS
#: encoder widths that must narrow strictly towards the bottleneck (checked at validation)
NARROWING_LAYERS = ("hidden_layers",)

NAME = "ae_keras"


def build_autoencoder(keras, n_dims: int, widths: list[int], bottleneck: int, activation: str):
    """(encoder, autoencoder) Keras models sharing layers; linear bottleneck and output."""
    inputs = keras.Input(shape=(n_dims,), name="input")
    h = inputs
    for i, w in enumerate(widths):
        h = keras.layers.Dense(w, activation=activation, name=f"enc_{i}")(h)
    code = keras.layers.Dense(bottleneck, name="bottleneck")(h)
    h = code
    for i, w in enumerate(reversed(widths)):
        h = keras.layers.Dense(w, activation=activation, name=f"dec_{i}")(h)
    outputs = keras.layers.Dense(n_dims, name="reconstruction")(h)
    return keras.Model(inputs, code, name="encoder"), keras.Model(inputs, outputs, name="ae")


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
    """Train the autoencoder on ``X`` (cells x PCs) and return the bottleneck, float32 ``(n, 2)``.

    Parameters
    ----------
    X
        Cells x input dimensions (the significant PCs). Not modified.
    seed
        Seeds weights, the validation split and the batch order.
    info
        Filled with ``history`` (training loss per epoch), ``val_history``, ``final_loss``
        (mean squared error of the whole scaled input), ``epochs_run``, ``device``,
        ``input_scaling``, ``batch_size``, ``widths``.
    threads
        TensorFlow intra-op threads.
    hidden_layers
        Encoder widths between the input and the 2-D bottleneck, strictly narrowing; the
        decoder mirrors them. Default: the one-unit-smaller ladder ``d-1, ..., 3``.
    activation
        Hidden-layer activation (a Keras name), default ELU as in the essay.
    epochs, batch_size
        ``None``: auto (see the module docstring).
    learning_rate
        Adam's step size.
    early_stopping_patience
        Epochs without a better validation loss before stopping; 0 disables early stopping.
    validation_fraction
        Share of cells held out for early stopping; 0 trains on all cells (no early stopping).
    """
    # Longer than 80 lines: the signature and numpydoc docstring list every parameter of the method
    # contract (tests/test_registry.py checks them against PARAMS); the code is 52 lines, the seeded
    # steps in the order they draw random numbers.
    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    p = ae.resolve_params(n, d, name=NAME, seed=seed, **ae.training(locals()))
    tf = _nn.setup_tensorflow(seed, threads)
    import keras

    scaler = _nn.Scaler.fit(X)
    Xs = _nn.scaled_dense(X, scaler)
    x_train = Xs[p["train_idx"]]
    x_val = Xs[p["val_idx"]] if len(p["val_idx"]) else None

    encoder, model = build_autoencoder(keras, d, p["widths"], ae.BOTTLENECK, activation)
    # no XLA: Keras turns jit_compile off under op determinism anyway
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]), loss="mse", jit_compile=False
    )
    ae.log_training(log, tf, d, p, ae.BOTTLENECK)

    def log_epoch(epoch, logs):
        val = logs.get("val_loss")
        log.info(
            "epoch %d/%d: loss %.5f%s",
            epoch + 1,
            p["epochs"],
            logs["loss"],
            "" if val is None else f", val_loss {val:.5f}",
        )

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)]
    callbacks += ae.early_stopping(keras, p, x_val is not None)
    hist = model.fit(
        _nn.dataset(tf, x_train, p["batch_size"], seed=seed, epochs=p["epochs"]),
        epochs=p["epochs"],
        steps_per_epoch=math.ceil(len(x_train) / p["batch_size"]),
        validation_data=None if x_val is None else _nn.dataset(tf, x_val, _nn.PREDICT_BATCH),
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself, seeded
        verbose=0,
    )
    emb = encoder.predict(_nn.dataset(tf, Xs, _nn.PREDICT_BATCH, target=False), verbose=0)
    final_loss = float(model.evaluate(_nn.dataset(tf, Xs, _nn.PREDICT_BATCH), verbose=0))
    log.info("final reconstruction loss (all cells) %.5f", final_loss)
    ae.report(
        info,
        tf,
        p,
        history=hist.history["loss"],
        val_history=hist.history.get("val_loss", []),
        final_loss=final_loss,
        activation=activation,
    )
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Input, its scaled copy, the train/validation copies and prediction buffers, plus TF."""
    return n_cells * n_features * 4 * 4 / 1e6 + n_cells * 2 * 4 * 2 / 1e6 + 800
